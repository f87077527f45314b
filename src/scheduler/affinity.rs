//! InterPodAffinity (kube-scheduler 1.32's plugin of that name): puts a pod next to, or away
//! from, pods already placed, per topology domain (the nodes sharing a `topologyKey` label
//! value).
//!
//! It owns the parsed form of a pod's `podAffinity` / `podAntiAffinity` terms
//! ([`PodAffinityTerms`], computed once per pod and kept on its `PodInfo`, so existing pods'
//! terms are not re-read every cycle), the per-cycle counts of matching pods per topology pair
//! (PreFilter), the three filter rules with upstream's reasons, and the preferred-term score.
//! It reads the whole cluster, unlike the per-node plugins in `plugins`, hence its own module.
//!
//! Filter, as upstream:
//! - required affinity: the node carries every term's topology key and, per term, its
//!   domain holds a pod matching *all* the terms; except that when no pod in the cluster
//!   matches them and the incoming pod matches its own terms, any node with the keys will do
//!   (the first pod of a self-affine group). Unresolvable.
//! - required anti-affinity: no pod matching a term in the node's domain for that term.
//! - symmetry: no existing pod whose required anti-affinity term matches the incoming pod
//!   sits in the node's domain for that term.
//!
//! Score: the incoming pod's preferred terms (+weight for affinity, −weight for
//! anti-affinity) over the pods they match, plus, symmetrically, existing pods' required
//! affinity (weight [`HARD_POD_AFFINITY_WEIGHT`]) and preferred terms that match the incoming
//! pod; each adds to every node in the matched pod's domain; normalized min..max → 0..100.
//!
//! A pod with no terms of its own costs only a look at the nodes indexed as holding pods
//! with (required anti-)affinity (`Snapshot::have_pods_with_*`); with none, PreFilter and
//! PreScore leave no state and the plugin skips.
//!
//! Approximations and omissions:
//! - `namespaceSelector: {}` selects every namespace; a `namespaceSelector` with labels
//!   selects no namespace (the snapshot has no namespace labels), so such a term looks only
//!   in its listed `namespaces`.
//! - `matchLabelKeys` / `mismatchLabelKeys` of a term are not read: upstream 1.32's API
//!   server merges them into `labelSelector` when the pod is created.
//! - A malformed `labelSelector` selects nothing (upstream fails the pod at PreFilter; its
//!   API server rejects such pods first).
//! - No AddPod/RemovePod PreFilter extensions (they serve preemption, which does not exist
//!   yet); upstream's defaults `hardPodAffinityWeight: 1` and
//!   `ignorePreferredTermsOfExistingPods: false` are fixed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::plugins::MAX_NODE_SCORE;
use super::plugins::{label_selector, CycleState, Plugin, Reject};
use super::snapshot::{NodeInfo, PodInfo, Snapshot};
use crate::api::selector::LabelSelector;
use crate::api::Pod;

/// The plugin's name, also its PreFilter state's key.
pub const NAME: &str = "InterPodAffinity";
/// Key of the PreScore state.
const PRE_SCORE_KEY: &str = "InterPodAffinity/PreScore";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// Score an existing pod's required affinity term gives its domain when the incoming pod
/// matches the term (upstream `hardPodAffinityWeight`, default 1; score units).
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

/// One pod (anti-)affinity term (upstream `framework.AffinityTerm`).
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    /// `None` when `labelSelector` is missing: the term selects no pod.
    pub selector: Option<LabelSelector>,
    /// The namespaces listed, or the owning pod's own when neither `namespaces` nor
    /// `namespaceSelector` is given.
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelector: {}`: every namespace.
    pub all_namespaces: bool,
    pub topology_key: String,
}

impl AffinityTerm {
    /// A `PodAffinityTerm` of a pod in `namespace` (upstream `newAffinityTerm`).
    pub fn parse(term: &Value, namespace: &str) -> AffinityTerm {
        let listed: BTreeSet<String> = term["namespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let ns_selector = &term["namespaceSelector"];
        let namespaces = if listed.is_empty() && ns_selector.is_null() {
            BTreeSet::from([namespace.to_string()])
        } else {
            listed
        };
        AffinityTerm {
            selector: label_selector(&term["labelSelector"]),
            namespaces,
            all_namespaces: label_selector(ns_selector).is_some_and(|s| s.is_empty()),
            topology_key: term["topologyKey"].as_str().unwrap_or("").to_string(),
        }
    }

    /// Whether `pod` is one the term selects (upstream `AffinityTerm.Matches`).
    pub fn matches(&self, pod: &Pod) -> bool {
        let m = &pod.metadata;
        (self.all_namespaces || self.namespaces.contains(&m.namespace))
            && self.selector.as_ref().is_some_and(|s| s.matches(&m.labels))
    }
}

/// The elements of a JSON array; none for anything else.
fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A preferred term and its weight (1..=100 once validated).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTerm {
    pub weight: i64,
    pub term: AffinityTerm,
}

/// A pod's pod-affinity and pod-anti-affinity terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodAffinityTerms {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedTerm>,
    pub preferred_anti_affinity: Vec<WeightedTerm>,
}

impl PodAffinityTerms {
    /// The pod's terms, or `None` when it has neither `podAffinity` nor `podAntiAffinity`.
    pub fn of(pod: &Pod) -> Option<PodAffinityTerms> {
        let affinity = pod.spec.affinity.as_ref()?;
        let (aff, anti) = (&affinity["podAffinity"], &affinity["podAntiAffinity"]);
        if aff.is_null() && anti.is_null() {
            return None;
        }
        let ns = pod.metadata.namespace.as_str();
        let required = |v: &Value| -> Vec<AffinityTerm> {
            items(&v[REQUIRED])
                .iter()
                .map(|t| AffinityTerm::parse(t, ns))
                .collect()
        };
        let preferred = |v: &Value| -> Vec<WeightedTerm> {
            items(&v[PREFERRED])
                .iter()
                .map(|t| WeightedTerm {
                    weight: t["weight"].as_i64().unwrap_or(0),
                    term: AffinityTerm::parse(&t["podAffinityTerm"], ns),
                })
                .collect()
        };
        Some(PodAffinityTerms {
            required_affinity: required(aff),
            required_anti_affinity: required(anti),
            preferred_affinity: preferred(aff),
            preferred_anti_affinity: preferred(anti),
        })
    }

    fn has_required(&self) -> bool {
        !self.required_affinity.is_empty() || !self.required_anti_affinity.is_empty()
    }

    fn has_preferred(&self) -> bool {
        !self.preferred_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }
}

/// Matching pods (or score) per topology pair, as topology key → value → amount; nested so
/// a node's label is looked up without building a pair. Zero entries are dropped.
type TopologyCounts = BTreeMap<String, BTreeMap<String, i64>>;

/// Adds `delta` to the pair (`key`, the node's value for it), if the node has the key.
fn add(counts: &mut TopologyCounts, labels: &BTreeMap<String, String>, key: &str, delta: i64) {
    let Some(value) = labels.get(key) else { return };
    // Keys and values are allocated only when new: this runs for every placed pod.
    if !counts.contains_key(key) {
        counts.insert(key.to_string(), BTreeMap::new());
    }
    let values = counts.get_mut(key).expect("inserted above");
    let n = match values.get_mut(value) {
        Some(n) => {
            *n += delta;
            *n
        }
        None => *values.entry(value.clone()).or_insert(delta),
    };
    if n == 0 {
        values.remove(value);
        if values.is_empty() {
            counts.remove(key);
        }
    }
}

/// The amount for the pair (`key`, the node's value for it); 0 when the node lacks the key.
fn get(counts: &TopologyCounts, labels: &BTreeMap<String, String>, key: &str) -> i64 {
    labels
        .get(key)
        .and_then(|v| counts.get(key)?.get(v))
        .copied()
        .unwrap_or(0)
}

/// Whether `pod` matches every term, and there is at least one (upstream
/// `podMatchesAllAffinityTerms`).
fn matches_all(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod))
}

/// What Filter reads, computed once per cycle.
struct PreFilterState {
    /// Existing pods whose required anti-affinity terms match the incoming pod.
    existing_anti_affinity: TopologyCounts,
    /// Existing pods matching all of the incoming pod's required affinity terms.
    affinity: TopologyCounts,
    /// Existing pods matching each of the incoming pod's required anti-affinity terms.
    anti_affinity: TopologyCounts,
}

/// Upstream `getExistingAntiAffinityCounts`: only nodes indexed as holding pods with
/// required anti-affinity are visited.
fn existing_anti_affinity_counts(pod: &Pod, snap: &Snapshot) -> TopologyCounts {
    let mut counts = TopologyCounts::new();
    for name in &snap.have_pods_with_required_anti_affinity {
        let Some(info) = snap.nodes.get(name) else {
            continue;
        };
        let Some(node) = &info.node else { continue };
        for existing in info.pods.values() {
            let Some(terms) = existing.affinity.as_deref() else {
                continue;
            };
            for t in terms
                .required_anti_affinity
                .iter()
                .filter(|t| t.matches(pod))
            {
                add(&mut counts, &node.metadata.labels, &t.topology_key, 1);
            }
        }
    }
    counts
}

/// Upstream `getIncomingAffinityAntiAffinityCounts`: every placed pod against the incoming
/// pod's required terms.
fn incoming_counts(terms: &PodAffinityTerms, snap: &Snapshot) -> (TopologyCounts, TopologyCounts) {
    let (mut affinity, mut anti) = (TopologyCounts::new(), TopologyCounts::new());
    for info in snap.schedulable_nodes() {
        let Some(node) = &info.node else { continue };
        let labels = &node.metadata.labels;
        for existing in info.pods.values() {
            if matches_all(&terms.required_affinity, &existing.pod) {
                for t in &terms.required_affinity {
                    add(&mut affinity, labels, &t.topology_key, 1);
                }
            }
            for t in &terms.required_anti_affinity {
                if t.matches(&existing.pod) {
                    add(&mut anti, labels, &t.topology_key, 1);
                }
            }
        }
    }
    (affinity, anti)
}

/// Upstream `satisfyPodAffinity`.
fn satisfies_affinity(
    s: &PreFilterState,
    terms: &[AffinityTerm],
    pod: &Pod,
    labels: &BTreeMap<String, String>,
) -> bool {
    let mut pods_exist = true;
    for t in terms {
        if !labels.contains_key(&t.topology_key) {
            return false; // Every topology key must be on the node.
        }
        if get(&s.affinity, labels, &t.topology_key) <= 0 {
            pods_exist = false;
        }
    }
    // The first pod of a group that has affinity to itself: nothing in the cluster matches
    // yet, so it may go anywhere that has the keys.
    pods_exist || (s.affinity.is_empty() && matches_all(terms, pod))
}

/// Adds each term's weight to the domain `labels` give its key, for every term that selects
/// `pod` (upstream `processTerms`).
fn weigh<'a>(
    scores: &mut TopologyCounts,
    labels: &BTreeMap<String, String>,
    terms: impl Iterator<Item = (&'a AffinityTerm, i64)>,
    pod: &Pod,
) {
    for (term, weight) in terms.filter(|(t, _)| t.matches(pod)) {
        add(scores, labels, &term.topology_key, weight);
    }
}

/// Preferred terms with their weights, negated for anti-affinity (`sign` −1).
fn weighted(terms: &[WeightedTerm], sign: i64) -> impl Iterator<Item = (&AffinityTerm, i64)> {
    terms.iter().map(move |w| (&w.term, sign * w.weight))
}

/// Upstream `processExistingPod`: what one placed pod adds to the scores of its domains.
fn score_existing_pod(
    scores: &mut TopologyCounts,
    incoming: &PodInfo,
    existing: &PodInfo,
    labels: &BTreeMap<String, String>,
) {
    if labels.is_empty() {
        return;
    }
    if let Some(t) = incoming.affinity.as_deref() {
        weigh_preferred(scores, labels, t, &existing.pod);
    }
    if let Some(t) = existing.affinity.as_deref() {
        let hard = t
            .required_affinity
            .iter()
            .map(|term| (term, HARD_POD_AFFINITY_WEIGHT));
        weigh(scores, labels, hard, &incoming.pod);
        weigh_preferred(scores, labels, t, &incoming.pod);
    }
}

/// Adds the weights of `terms`' preferred affinity (+) and anti-affinity (−) terms that
/// `pod` matches to the pairs of `labels`.
fn weigh_preferred(
    scores: &mut TopologyCounts,
    labels: &BTreeMap<String, String>,
    terms: &PodAffinityTerms,
    pod: &Pod,
) {
    weigh(scores, labels, weighted(&terms.preferred_affinity, 1), pod);
    weigh(
        scores,
        labels,
        weighted(&terms.preferred_anti_affinity, -1),
        pod,
    );
}

/// What Score reads: the score of every topology pair.
struct PreScoreState {
    topology_score: TopologyCounts,
}

/// The InterPodAffinity plugin.
pub struct InterPodAffinity;

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        snap: &Snapshot,
        state: &mut CycleState,
    ) -> Result<(), Reject> {
        let existing_anti_affinity = existing_anti_affinity_counts(&pod.pod, snap);
        let own = pod.affinity.as_deref().filter(|t| t.has_required());
        if existing_anti_affinity.is_empty() && own.is_none() {
            return Ok(()); // Upstream's Skip: Filter finds no state and passes every node.
        }
        let (affinity, anti_affinity) =
            own.map_or_else(Default::default, |t| incoming_counts(t, snap));
        let s = PreFilterState {
            existing_anti_affinity,
            affinity,
            anti_affinity,
        };
        state.put(NAME, s);
        Ok(())
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let Some(s) = state.get::<PreFilterState>(NAME) else {
            return Ok(());
        };
        let Some(n) = &node.node else { return Ok(()) };
        let labels = &n.metadata.labels;
        let terms = pod.affinity.as_deref();
        let required = terms.map_or(&[][..], |t| &t.required_affinity[..]);
        let anti = terms.map_or(&[][..], |t| &t.required_anti_affinity[..]);
        if !satisfies_affinity(s, required, &pod.pod, labels) {
            return Err(Reject::unresolvable(REASON_AFFINITY));
        }
        if anti
            .iter()
            .any(|t| get(&s.anti_affinity, labels, &t.topology_key) > 0)
        {
            return Err(Reject::resolvable(vec![REASON_ANTI_AFFINITY.to_string()]));
        }
        let existing = s.existing_anti_affinity.iter().any(|(key, values)| {
            labels
                .get(key)
                .and_then(|v| values.get(v))
                .is_some_and(|&c| c > 0)
        });
        if existing {
            return Err(Reject::resolvable(vec![
                REASON_EXISTING_ANTI_AFFINITY.to_string()
            ]));
        }
        Ok(())
    }

    fn scores(&self) -> bool {
        true
    }

    /// Upstream `PreScore`: with preferred terms of its own the pod is weighed against every
    /// placed pod; without, only pods with affinity terms can add anything.
    fn pre_score(
        &self,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[&NodeInfo],
        state: &mut CycleState,
    ) -> bool {
        if feasible.is_empty() {
            return false;
        }
        let all_pods = pod.affinity.as_deref().is_some_and(|t| t.has_preferred());
        let mut scores = TopologyCounts::new();
        let mut visit = |info: &NodeInfo| {
            let Some(node) = &info.node else { return };
            let pods = info.pods.values();
            for existing in pods.filter(|p| all_pods || p.affinity.is_some()) {
                score_existing_pod(&mut scores, pod, existing, &node.metadata.labels);
            }
        };
        if all_pods {
            snap.schedulable_nodes().for_each(&mut visit);
        } else {
            let indexed = snap.have_pods_with_affinity.iter();
            indexed.filter_map(|n| snap.nodes.get(n)).for_each(visit);
        }
        if scores.is_empty() {
            return false; // Upstream's Skip: nothing would tell the nodes apart.
        }
        state.put(
            PRE_SCORE_KEY,
            PreScoreState {
                topology_score: scores,
            },
        );
        true
    }

    /// The sum of the scores of the node's topology pairs (negative for anti-affinity).
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.get::<PreScoreState>(PRE_SCORE_KEY) else {
            return 0;
        };
        let Some(n) = &node.node else { return 0 };
        let labels = &n.metadata.labels;
        s.topology_score
            .keys()
            .map(|key| get(&s.topology_score, labels, key))
            .sum()
    }

    /// Upstream: min..max onto 0..=100; all equal gives 0 everywhere.
    fn normalize(&self, scores: &mut [i64]) {
        let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
            return;
        };
        let spread = max - min;
        for s in scores.iter_mut() {
            *s = if spread > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / spread as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Node;
    use crate::scheduler::framework::Framework;
    use crate::scheduler::snapshot::Cache;
    use crate::scheduler::testing;
    use serde_json::json;
    use std::sync::Arc;

    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";

    /// n1, n2 in zone a; n3 in zone b; n4 without a zone.
    fn cluster(pods: &[Arc<Pod>]) -> Cache {
        let mut c = Cache::default();
        for (name, zone) in [
            ("n1", Some("a")),
            ("n2", Some("a")),
            ("n3", Some("b")),
            ("n4", None),
        ] {
            let mut labels = json!({HOST: name});
            if let Some(z) = zone {
                labels[ZONE] = json!(z);
            }
            let n: Node =
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
                .unwrap();
            c.upsert_node(Arc::new(n));
        }
        for p in pods {
            c.upsert_pod(p.clone());
        }
        c
    }

    fn pod(name: &str, ns: &str, app: &str, node: &str, affinity: Value) -> Arc<Pod> {
        let mut spec = json!({"nodeName": node});
        if !affinity.is_null() {
            spec["affinity"] = affinity;
        }
        let p = json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}, "spec": spec});
        Arc::new(serde_json::from_value(p).unwrap())
    }

    fn term(app: &str, key: &str) -> Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    fn required(kind: &str, terms: Value) -> Value {
        json!({kind: {REQUIRED: terms}})
    }

    fn filter_all(incoming: &Arc<Pod>, c: &Cache) -> Vec<Option<(String, bool)>> {
        testing::filter_all(&InterPodAffinity, incoming, c)
    }

    fn no(reason: &str, unresolvable: bool) -> Option<(String, bool)> {
        Some((reason.to_string(), unresolvable))
    }

    #[test]
    fn required_affinity_needs_a_matching_pod_in_the_domain() {
        let c = cluster(&[pod("db", "d", "db", "n1", Value::Null)]);
        let web = pod(
            "web",
            "d",
            "web",
            "",
            required("podAffinity", json!([term("db", ZONE)])),
        );
        let aff = no(REASON_AFFINITY, true);
        assert_eq!(filter_all(&web, &c), [None, None, aff.clone(), aff.clone()]);
        // Several terms: a domain must hold a pod matching all of them.
        let both = json!([term("db", ZONE), {"labelSelector": {"matchExpressions":
            [{"key": "app", "operator": "Exists"}]}, "topologyKey": HOST}]);
        let web = pod("web", "d", "web", "", required("podAffinity", both));
        assert_eq!(filter_all(&web, &c), [None, aff.clone(), aff.clone(), aff]);
    }

    #[test]
    fn first_pod_of_a_self_affine_group_goes_anywhere_with_the_key() {
        let own = required("podAffinity", json!([term("web", ZONE)]));
        let aff = no(REASON_AFFINITY, true);
        // Nothing matches anywhere (a web pod in another namespace does not count).
        let c = cluster(&[pod("other", "e", "web", "n3", Value::Null)]);
        let first = pod("web", "d", "web", "", own.clone());
        assert_eq!(filter_all(&first, &c), [None, None, None, aff.clone()]);
        // A pod that does not match its own term gets no such exception.
        let stranger = pod("api", "d", "api", "", own.clone());
        let all = vec![aff.clone(); 4];
        assert_eq!(filter_all(&stranger, &c), all);
        // Once a group member is placed, the others follow it.
        let c = cluster(&[pod("web0", "d", "web", "n3", Value::Null)]);
        let second = pod("web1", "d", "web", "", own);
        assert_eq!(
            filter_all(&second, &c),
            [aff.clone(), aff.clone(), None, aff]
        );
    }

    #[test]
    fn required_anti_affinity_keeps_matching_pods_out_of_the_domain() {
        let c = cluster(&[pod("web0", "d", "web", "n1", Value::Null)]);
        let anti = no(REASON_ANTI_AFFINITY, false);
        let by_host = required("podAntiAffinity", json!([term("web", HOST)]));
        let web = pod("web1", "d", "web", "", by_host);
        assert_eq!(filter_all(&web, &c), [anti.clone(), None, None, None]);
        // A node without the key is no domain of the term, so nothing there conflicts.
        let by_zone = required("podAntiAffinity", json!([term("web", ZONE)]));
        let web = pod("web1", "d", "web", "", by_zone);
        assert_eq!(filter_all(&web, &c), [anti.clone(), anti, None, None]);
    }

    #[test]
    fn existing_pods_anti_affinity_keeps_the_incoming_pod_out() {
        let guard = required("podAntiAffinity", json!([term("web", ZONE)]));
        let c = cluster(&[pod("guard", "d", "db", "n1", guard)]);
        let existing = no(REASON_EXISTING_ANTI_AFFINITY, false);
        let web = pod("web", "d", "web", "", Value::Null);
        assert_eq!(
            filter_all(&web, &c),
            [existing.clone(), existing, None, None]
        );
        // A pod the term does not select, or from another namespace, goes anywhere.
        let api = pod("api", "d", "api", "", Value::Null);
        assert_eq!(filter_all(&api, &c), [None, None, None, None]);
        let elsewhere = pod("web", "e", "web", "", Value::Null);
        assert_eq!(filter_all(&elsewhere, &c), [None, None, None, None]);
    }

    #[test]
    fn terms_look_in_their_namespaces() {
        let other = pod("x", "other", "web", "n1", Value::Null);
        let parse = |t: Value| AffinityTerm::parse(&t, "d");
        let own = parse(term("web", ZONE));
        assert_eq!(own.namespaces, BTreeSet::from(["d".to_string()]));
        assert!(!own.matches(&other));
        let mut listed = term("web", ZONE);
        listed["namespaces"] = json!(["other"]);
        assert!(parse(listed).matches(&other));
        let mut all = term("web", ZONE);
        all["namespaceSelector"] = json!({});
        assert!(parse(all).matches(&other));
        // A labelled namespaceSelector selects no namespace here (no namespace labels).
        let mut labelled = term("web", ZONE);
        labelled["namespaceSelector"] = json!({"matchLabels": {"team": "x"}});
        let labelled = parse(labelled);
        assert!(labelled.namespaces.is_empty() && !labelled.all_namespaces);
        assert!(!labelled.matches(&other));
        // No labelSelector selects no pod.
        assert!(!parse(json!({"topologyKey": ZONE})).matches(&other));
    }

    #[test]
    fn pods_without_terms_cost_nothing_and_the_index_follows_the_cache() {
        let mut c = cluster(&[pod("db", "d", "db", "n1", Value::Null)]);
        let plain = PodInfo::new(pod("web", "d", "web", "", Value::Null));
        assert!(plain.affinity.is_none());
        let mut state = CycleState::default();
        let snap = c.snapshot();
        InterPodAffinity
            .pre_filter(&plain, snap, &mut state)
            .unwrap();
        assert!(state.get::<PreFilterState>(NAME).is_none());
        let nodes: Vec<&NodeInfo> = snap.schedulable_nodes().collect();
        assert!(!InterPodAffinity.pre_score(&plain, snap, &nodes, &mut state));
        // A pod with terms is indexed on its node while it is there.
        let guard = required("podAntiAffinity", json!([term("web", ZONE)]));
        let guard = Arc::new(PodInfo::new(pod("guard", "d", "db", "", guard)));
        c.assume(guard, "n3");
        let names = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        assert_eq!(names(&c.snapshot().have_pods_with_affinity), ["n3"]);
        assert_eq!(
            names(&c.snapshot().have_pods_with_required_anti_affinity),
            ["n3"]
        );
        c.remove_pod("d/guard");
        assert!(c.snapshot().have_pods_with_affinity.is_empty());
        assert!(c
            .snapshot()
            .have_pods_with_required_anti_affinity
            .is_empty());
    }

    fn scores(incoming: &Arc<Pod>, c: &Cache) -> (Vec<i64>, Vec<i64>) {
        testing::scores(&InterPodAffinity, incoming, c)
    }

    #[test]
    fn preferred_terms_score_their_domains() {
        let c = cluster(&[
            pod("db", "d", "db", "n1", Value::Null),
            pod("cache", "d", "cache", "n3", Value::Null),
        ]);
        let prefer = json!({
            "podAffinity": {PREFERRED: [{"weight": 10, "podAffinityTerm": term("db", ZONE)}]},
            "podAntiAffinity": {PREFERRED: [{"weight": 5, "podAffinityTerm": term("cache", ZONE)}]}});
        let web = pod("web", "d", "web", "", prefer);
        assert_eq!(
            scores(&web, &c),
            (vec![10, 10, -5, 0], vec![100, 100, 0, 33])
        );
    }

    #[test]
    fn existing_pods_terms_score_symmetrically() {
        let host_pref = json!({"podAffinity": {PREFERRED: [
            {"weight": 7, "podAffinityTerm": term("web", HOST)}]}});
        let zone_anti = json!({"podAntiAffinity": {PREFERRED: [
            {"weight": 3, "podAffinityTerm": term("web", HOST)}]}});
        let c = cluster(&[
            pod(
                "follower",
                "d",
                "db",
                "n1",
                required("podAffinity", json!([term("web", ZONE)])),
            ),
            pod("fan", "d", "db", "n3", host_pref),
            pod("hater", "d", "db", "n4", zone_anti),
        ]);
        let web = pod("web", "d", "web", "", Value::Null);
        // Required affinity of an existing pod weighs HARD_POD_AFFINITY_WEIGHT.
        assert_eq!(scores(&web, &c), (vec![1, 1, 7, -3], vec![40, 40, 100, 0]));
    }

    #[test]
    fn the_framework_reports_anti_affinity_as_upstream() {
        let guard = required("podAntiAffinity", json!([term("web", HOST)]));
        let c = cluster(&[
            pod("a", "d", "web", "n1", Value::Null),
            pod("b", "d", "web", "n2", Value::Null),
            pod("guard", "d", "db", "n3", guard.clone()),
            pod("c", "d", "web", "n4", Value::Null),
        ]);
        let web = PodInfo::new(pod("web", "d", "web", "", guard));
        let fw = Framework::with_defaults();
        let err = fw
            .schedule(&web, c.snapshot(), "", &mut || 0)
            .0
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/4 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, \
             3 node(s) didn't match pod anti-affinity rules."
        );
        assert_eq!(err.resolvable_nodes, ["n1", "n2", "n3", "n4"]);
    }
}
