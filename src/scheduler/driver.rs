//! The scheduler's driver: feeds the pure core from informers, binds its decisions through
//! the API server, and reports them as events — only while it holds the `kube-scheduler`
//! lease when leader election is on.
//!
//! One loop owns the cache and the queue. Binding runs in the background (a bounded number at
//! once) so a slow API server does not stall placement; the chosen node is counted (assumed)
//! from the moment of the decision, and the binding's outcome comes back to the loop. A pod
//! bound elsewhere meanwhile (409) is dropped, not retried.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::framework::{FitError, Framework};
use super::preemption::{preempt, Preemption, DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER};
use super::queue::SchedulingQueue;
use super::snapshot::{Cache, PodInfo};
use crate::api::kind::{to_json, Kind};
use crate::api::time::rfc3339;
use crate::api::{Binding, Node, Pod};
use crate::client::events::{reference_to, Recorder};
use crate::client::informer::{self, Change, InformerConfig, Store};
use crate::client::leader::{self, ElectionConfig, Leadership};
use crate::client::{Api, Client, ClientConfig, ClientError, DeleteParams, Patch};
use crate::platform::task::{spawn, Shutdown};
use crate::platform::Platform;

/// The name pods ask for in `spec.schedulerName` (empty means this one).
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// The lease replicas compete for.
pub const SCHEDULER_LEASE_NAME: &str = "kube-scheduler";
pub const LEASE_NAMESPACE: &str = "kube-system";
/// Bindings on their way at once.
pub const MAX_BINDS_IN_FLIGHT: usize = 64;
/// How often backed-off and long-parked pods are moved back to active, and assumptions
/// expired (upstream flushes every second).
pub const FLUSH_INTERVAL_MS: u64 = 1_000;

/// What `rkube scheduler` runs with.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub client: ClientConfig,
    /// Pods with this `spec.schedulerName` (or none) are ours.
    pub scheduler_name: String,
    pub leader_elect: bool,
    /// This replica's name in the lease.
    pub identity: String,
    /// 0: upstream's adaptive default.
    pub percentage_of_nodes_to_score: usize,
}

/// Whether a node update could make a parked pod fit (upstream
/// `nodeSchedulingPropertiesChange`): a kubelet heartbeat alone does not.
fn scheduling_relevant_change(old: &Node, new: &Node) -> bool {
    fn conditions(n: &Node) -> impl Iterator<Item = (&str, &str)> {
        let c = n.status.conditions.iter();
        c.map(|c| (c.type_.as_str(), c.status.as_str()))
    }
    old.status.allocatable != new.status.allocatable
        || old.metadata.labels != new.metadata.labels
        || old.spec.taints != new.spec.taints
        || old.spec.unschedulable != new.spec.unschedulable
        || !conditions(old).eq(conditions(new))
}

/// Whether a change to a bound (or finished) pod could make a parked pod schedulable: a new
/// binding or label change (pod affinity, spread), or a pod finishing (room freed). Status
/// updates from the kubelet do not.
fn assigned_pod_change_matters(old: Option<&Pod>, new: &Pod) -> bool {
    let Some(old) = old else { return true };
    old.spec.node_name != new.spec.node_name
        || old.metadata.labels != new.metadata.labels
        || old.is_finished() != new.is_finished()
}

/// How a binding ended.
struct Bound {
    key: String,
    node: String,
    pod: Arc<Pod>,
    result: Result<(), ClientError>,
}

struct Scheduler {
    cache: Cache,
    queue: SchedulingQueue,
    framework: Framework,
    /// The node the next cycle starts at (round robin over the node names).
    start: String,
    pods: Store<Pod>,
    name: String,
    binds_in_flight: usize,
    bound_tx: mpsc::Sender<Bound>,
    client: Client,
    recorder: Recorder,
    platform: Platform,
}

/// Runs the scheduler until `shutdown`.
pub async fn run(
    cfg: SchedulerConfig,
    platform: Platform,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let client = Client::new(&cfg.client, platform.clock.clone()).map_err(|e| e.to_string())?;
    let leadership = cfg.leader_elect.then(|| {
        let l = Leadership::new(
            ElectionConfig::upstream(&cfg.identity),
            platform.clock.clone(),
        );
        let leases = Api::namespaced(&client, LEASE_NAMESPACE);
        spawn(leader::run(
            leases,
            SCHEDULER_LEASE_NAME,
            l.clone(),
            shutdown.clone(),
        ));
        l
    });
    let (nodes, mut node_changes) = informer::start(
        Api::<Node>::all(&client),
        InformerConfig::default(),
        shutdown.clone(),
    );
    let (pods, mut pod_changes) = informer::start(
        Api::<Pod>::all(&client),
        InformerConfig::default(),
        shutdown.clone(),
    );
    let (bound_tx, mut bound_rx) = mpsc::channel(MAX_BINDS_IN_FLIGHT);
    let mut framework = Framework::with_defaults();
    framework.percentage_of_nodes_to_score = cfg.percentage_of_nodes_to_score;
    let mut s = Scheduler {
        cache: Cache::default(),
        queue: SchedulingQueue::default(),
        framework,
        start: String::new(),
        pods,
        name: cfg.scheduler_name.clone(),
        binds_in_flight: 0,
        bound_tx,
        recorder: Recorder::new(&client, &cfg.scheduler_name, &cfg.identity),
        client,
        platform: platform.clone(),
    };
    let mut ticker = platform
        .clock
        .interval(Duration::from_millis(FLUSH_INTERVAL_MS));
    tracing::info!(identity = cfg.identity, "scheduler starting");
    loop {
        let leading = leadership.as_ref().is_none_or(Leadership::is_leader);
        let ready = leading
            && nodes.has_synced()
            && s.pods.has_synced()
            && s.binds_in_flight < MAX_BINDS_IN_FLIGHT
            && s.queue.active_len() > 0;
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Ok(()),
            Some(c) = node_changes.recv() => s.on_node(c),
            Some(c) = pod_changes.recv() => s.on_pod(c),
            Some(b) = bound_rx.recv() => s.on_bound(b),
            _ = ticker.tick() => s.flush(),
            _ = std::future::ready(()), if ready => s.schedule_one(),
        }
    }
}

impl Scheduler {
    fn now_ms(&self) -> i64 {
        self.platform.clock.now_ms() as i64
    }

    fn ours(&self, pod: &Pod) -> bool {
        let wanted = &pod.spec.scheduler_name;
        wanted.is_empty() || *wanted == self.name
    }

    fn on_node(&mut self, c: Change<Node>) {
        let now = self.now_ms();
        match c {
            Change::Added(n) => {
                self.cache.upsert_node(n);
                self.queue.move_all(now);
            }
            Change::Updated(old, new) => {
                let changed = scheduling_relevant_change(&old, &new);
                self.cache.upsert_node(new);
                if changed {
                    self.queue.move_all(now);
                }
            }
            Change::Deleted(n) => self.cache.remove_node(&n.metadata.name),
        }
    }

    fn on_pod(&mut self, c: Change<Pod>) {
        let now = self.now_ms();
        let (old, pod) = match c {
            Change::Added(p) => (None, p),
            Change::Updated(old, p) => (Some(old), p),
            Change::Deleted(p) => {
                let key = informer::key_of(&*p);
                let was_placed = !p.spec.node_name.is_empty() || self.cache.is_assumed(&key);
                self.cache.remove_pod(&key);
                self.queue.remove(&key);
                if was_placed {
                    self.queue.move_all(now); // room was freed
                }
                return;
            }
        };
        let key = informer::key_of(&*pod);
        if !pod.spec.node_name.is_empty() || pod.is_finished() {
            self.queue.remove(&key);
            let wakes = assigned_pod_change_matters(old.as_deref(), &pod);
            self.cache.upsert_pod(pod);
            if wakes {
                self.queue.move_all(now);
            }
            return;
        }
        let pending = self.ours(&pod) && pod.metadata.deletion_timestamp.is_none();
        let nominated = &pod.status.nominated_node_name;
        if pending && !nominated.is_empty() {
            let info = Arc::new(PodInfo::new(pod.clone()));
            self.cache.nominate(info, nominated);
        } else {
            self.cache.unnominate(&key);
        }
        if !pending {
            self.queue.remove(&key);
        } else if !self.cache.is_assumed(&key) {
            self.enqueue(&key, &pod, now);
            let changed =
                old.is_some_and(|o| o.spec != pod.spec || o.metadata.labels != pod.metadata.labels);
            if changed {
                self.queue.wake(&key, now);
            }
        }
    }

    fn enqueue(&mut self, key: &str, pod: &Pod, now: i64) {
        if !self.queue.add(key, pod.spec.priority.unwrap_or(0), now) {
            tracing::warn!(
                pod = key,
                "scheduling queue full; the pod waits for its next change"
            );
        }
    }

    fn flush(&mut self) {
        let now = self.now_ms();
        for key in self.cache.expire(now) {
            tracing::warn!(pod = key, "binding never observed; trying again");
            if let Some(p) = self.pods.get(&key) {
                self.enqueue(&key, &p, now);
            }
        }
        self.queue.flush(now);
    }

    /// One scheduling cycle for the next active pod.
    fn schedule_one(&mut self) {
        let Some(key) = self.queue.pop() else { return };
        let now = self.now_ms();
        let Some(pod) = self.pods.get(&key) else {
            self.queue.remove(&key);
            return;
        };
        if !pod.spec.node_name.is_empty() || pod.metadata.deletion_timestamp.is_some() {
            self.queue.remove(&key);
            return;
        }
        let info = Arc::new(PodInfo::new(pod.clone()));
        let rng = self.platform.rng.clone();
        let (result, next) =
            self.framework
                .schedule(&info, self.cache.snapshot(), &self.start, &mut || {
                    rng.next_u64()
                });
        self.start = next;
        match result {
            Ok(placed) => {
                self.cache.assume(info, &placed.node);
                self.bind(key, placed.node, pod);
            }
            Err(mut fit) => {
                let random = &mut || rng.next_u64();
                let snap = self.cache.snapshot();
                let nominated = match preempt(&self.framework, &info, snap, &fit, random) {
                    Ok(p) => {
                        let node = p.node.clone();
                        self.evict(&pod, p);
                        Some(node)
                    }
                    Err(no) => {
                        fit.post_filter = no.message;
                        no.clear_nomination.then(String::new)
                    }
                };
                if let Some(node) = &nominated {
                    // At once, as upstream: the room is held from the next cycle on.
                    self.cache.nominate(info, node);
                }
                self.queue.unschedulable(&key, now);
                self.report_unschedulable(&pod, &fit, nominated);
            }
        }
    }

    /// Carries out a preemption for `preemptor` (upstream `PrepareCandidate`): each victim
    /// is marked `DisruptionTarget`, deleted (its own grace period; only that pod, by uid),
    /// and told why with a `Preempted` event. One task per preemption, victims in turn.
    fn evict(&self, preemptor: &Pod, p: Preemption) {
        tracing::info!(pod = %informer::key_of(preemptor), node = p.node,
            victims = p.victims.len(), "preempting");
        let (client, recorder) = (self.client.clone(), self.recorder.clone());
        let message = format!(
            "Preempted by pod {} on node {}",
            preemptor.metadata.uid, p.node
        );
        let condition = json!({"status": {"conditions": [{"type": DISRUPTION_TARGET,
            "status": "True", "reason": PREEMPTION_BY_SCHEDULER,
            "message": format!("{}: preempting to accommodate a higher priority pod", self.name),
            "lastTransitionTime": rfc3339(self.platform.clock.wall_unix_ms())}]}});
        let mark = Patch::Strategic(condition);
        spawn(async move {
            for v in p.victims {
                let pod = &v.pod;
                let api: Api<Pod> = Api::namespaced(&client, &pod.metadata.namespace);
                let name = &pod.metadata.name;
                if let Err(e) = api.patch_status(name, &mark).await {
                    tracing::debug!(pod = v.key, error = %e, "cannot mark the victim");
                }
                let only = DeleteParams {
                    uid: Some(pod.metadata.uid.clone()),
                    ..DeleteParams::default()
                };
                match api.delete(name, &only).await {
                    Ok(()) => {
                        recorder.record(reference_to(&**pod), "Normal", "Preempted", &message)
                    }
                    Err(e) => tracing::debug!(pod = v.key, error = %e, "cannot delete the victim"),
                }
            }
        });
    }

    fn bind(&mut self, key: String, node: String, pod: Arc<Pod>) {
        self.binds_in_flight += 1;
        let (client, tx) = (self.client.clone(), self.bound_tx.clone());
        spawn(async move {
            let api: Api<Pod> = Api::namespaced(&client, &pod.metadata.namespace);
            let mut binding = Binding::default();
            binding.metadata.name = pod.metadata.name.clone();
            binding.metadata.uid = pod.metadata.uid.clone();
            binding.target.api_version = "v1".into();
            binding.target.kind = Node::KIND.into();
            binding.target.name = node.clone();
            let result = api
                .create_subresource(&pod.metadata.name, "binding", &to_json(&binding))
                .await
                .map(drop);
            let _ = tx
                .send(Bound {
                    key,
                    node,
                    pod,
                    result,
                })
                .await;
        });
    }

    fn on_bound(&mut self, b: Bound) {
        assert!(
            self.binds_in_flight > 0,
            "a binding came back that was never sent"
        );
        self.binds_in_flight -= 1;
        let now = self.now_ms();
        match b.result {
            Ok(()) => {
                self.cache.finish_binding(&b.key, now);
                self.queue.remove(&b.key);
                let m = format!(
                    "Successfully assigned {}/{} to {}",
                    b.pod.metadata.namespace, b.pod.metadata.name, b.node
                );
                self.recorder
                    .record(reference_to(&*b.pod), "Normal", "Scheduled", &m);
            }
            Err(e) if e.is_conflict() || e.is_not_found() => {
                // Bound elsewhere or gone meanwhile: nothing left to do for this pod.
                tracing::debug!(pod = b.key, error = %e, "binding refused; dropping");
                self.cache.forget(&b.key);
                self.queue.remove(&b.key);
            }
            Err(e) => {
                tracing::warn!(pod = b.key, error = %e, "binding failed; backing off");
                self.cache.forget(&b.key);
                self.queue.retry(&b.key, now);
            }
        }
    }

    /// `FailedScheduling` event and the PodScheduled=False condition, as upstream, with the
    /// pod's new `nominatedNodeName` if preemption set or voided it.
    fn report_unschedulable(&self, pod: &Arc<Pod>, fit: &FitError, nominated: Option<String>) {
        let message = fit.to_string();
        self.recorder.record(
            reference_to(&**pod),
            "Warning",
            "FailedScheduling",
            &message,
        );
        let current = pod
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled");
        let was_false = current.is_some_and(|c| c.status == "False");
        let nominated = nominated.filter(|n| *n != pod.status.nominated_node_name);
        let said = current.is_some_and(|c| c.reason == "Unschedulable" && c.message == message);
        if was_false && said && nominated.is_none() {
            return; // Already says so: no write, no watch event.
        }
        let mut condition = json!({"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": message, "lastProbeTime": null});
        if !was_false {
            // The transition time moves only when the status does (merged by type).
            condition["lastTransitionTime"] = json!(rfc3339(self.platform.clock.wall_unix_ms()));
        }
        let mut status = json!({"conditions": [condition]});
        if let Some(node) = nominated {
            // An empty name clears the nomination (a null in a merge patch).
            status["nominatedNodeName"] = if node.is_empty() {
                json!(null)
            } else {
                json!(node)
            };
        }
        let patch = Patch::Strategic(json!({ "status": status }));
        let api: Api<Pod> = Api::namespaced(&self.client, &pod.metadata.namespace);
        let name = pod.metadata.name.clone();
        spawn(async move {
            if let Err(e) = api.patch_status(&name, &patch).await {
                tracing::debug!(pod = name, error = %e, "cannot record the pod's condition");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_do_not_wake_parked_pods() {
        let node = |cpu: &str, beat: &str, ready: &str| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n"},
                "status": {"allocatable": {"cpu": cpu}, "conditions": [{"type": "Ready",
                    "status": ready, "lastHeartbeatTime": beat}]}}))
            .unwrap()
        };
        let base = node("2", "2026-11-27T00:00:00Z", "True");
        assert!(!scheduling_relevant_change(
            &base,
            &node("2", "2026-11-27T00:00:10Z", "True")
        ));
        assert!(scheduling_relevant_change(
            &base,
            &node("4", "2026-11-27T00:00:00Z", "True")
        ));
        assert!(scheduling_relevant_change(
            &base,
            &node("2", "2026-11-27T00:00:00Z", "False")
        ));
        let mut cordoned = base.clone();
        cordoned.spec.unschedulable = Some(true);
        assert!(scheduling_relevant_change(&base, &cordoned));
        let mut tainted = base.clone();
        tainted.spec.taints =
            serde_json::from_value(json!([{"key": "k", "effect": "NoSchedule"}])).unwrap();
        assert!(scheduling_relevant_change(&base, &tainted));
        let mut relabeled = base.clone();
        relabeled.metadata.labels.insert("zone".into(), "a".into());
        assert!(scheduling_relevant_change(&base, &relabeled));
    }

    #[test]
    fn only_bindings_labels_and_finishing_wake_parked_pods() {
        let pod = |node: &str, phase: &str, app: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"app": app}},
                "spec": {"nodeName": node}, "status": {"phase": phase}}))
            .unwrap()
        };
        let running = pod("n1", "Running", "web");
        assert!(assigned_pod_change_matters(None, &running));
        assert!(assigned_pod_change_matters(
            Some(&pod("", "Pending", "web")),
            &running
        ));
        assert!(!assigned_pod_change_matters(
            Some(&pod("n1", "Pending", "web")),
            &running
        ));
        assert!(assigned_pod_change_matters(
            Some(&running),
            &pod("n1", "Running", "db")
        ));
        assert!(assigned_pod_change_matters(
            Some(&running),
            &pod("n1", "Succeeded", "web")
        ));
    }
}
