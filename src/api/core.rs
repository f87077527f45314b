//! Typed `core/v1` objects (Pod, Node, Service, ...) for the client library and the
//! controllers, which read and write them as structs rather than as raw JSON.
//!
//! Only the fields our components act on are modelled; everything else an object carries
//! stays in each struct's `extra`, so reading an object and writing it back loses nothing
//! (see `api::kind` for the serialization conventions). Also here: `IntOrString` (ports and
//! rolling-update amounts), `ObjectReference`, and typed access to `ownerReferences`, which
//! `ObjectMeta` keeps untyped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::is_default;
use super::ObjectMeta;
use crate::kind;

/// Resource quantities by resource name (`{"cpu": "500m", "memory": "1Gi"}`). Quantities stay
/// text: parsing them is the scheduler's business, and text round-trips exactly.
pub type ResourceList = BTreeMap<String, String>;

/// A number or a string (`targetPort: 8080` or `"http"`; `maxSurge: 1` or `"25%"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl From<i64> for IntOrString {
    fn from(n: i64) -> Self {
        IntOrString::Int(n)
    }
}

impl From<&str> for IntOrString {
    fn from(s: &str) -> Self {
        IntOrString::String(s.to_string())
    }
}

impl IntOrString {
    /// The absolute amount for `total` items, as upstream's `GetScaledValueFromIntOrPercent`:
    /// an integer as is, `"25%"` scaled and rounded up (`maxSurge`) or down
    /// (`maxUnavailable`). `None` for a string that is not a percentage (a named port) or a
    /// result outside `i32`.
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Option<i32> {
        match self {
            IntOrString::Int(n) => i32::try_from(*n).ok(),
            IntOrString::String(s) => {
                let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
                let product = percent * i64::from(total);
                let scaled = if round_up {
                    -(-product).div_euclid(100)
                } else {
                    product.div_euclid(100)
                };
                i32::try_from(scaled).ok()
            }
        }
    }
}

/// A pointer to another object (an event's subject, an endpoint's pod, a binding's node).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One entry of `metadata.ownerReferences` (`meta/v1` upstream). `ObjectMeta` keeps the list
/// untyped in `extra`; [`owner_references`] and [`set_owner_references`] type it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// At most one owner is the managing controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The owners in `meta`. A malformed `ownerReferences` reads as no owners at all rather than
/// as the well-formed part: a garbage collector that saw only some owners could delete an
/// object another owner still holds.
pub fn owner_references(meta: &ObjectMeta) -> Vec<OwnerReference> {
    meta.extra
        .get("ownerReferences")
        .and_then(|v| Vec::<OwnerReference>::deserialize(v).ok())
        .unwrap_or_default()
}

/// Replaces the owners in `meta`; an empty list removes the field, as upstream omits it.
pub fn set_owner_references(meta: &mut ObjectMeta, refs: &[OwnerReference]) {
    if refs.is_empty() {
        meta.extra.remove("ownerReferences");
    } else {
        let v = serde_json::to_value(refs).expect("owner references serialize to JSON");
        meta.extra.insert("ownerReferences".into(), v);
    }
}

/// The owner with `controller: true` (the ReplicaSet of a pod, the Deployment of a
/// ReplicaSet), if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<OwnerReference> {
    owner_references(meta)
        .into_iter()
        .find(|r| r.controller == Some(true))
}

// ---------------------------------------------------------------------------------------
// Namespace

/// A namespace (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: NamespaceSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: NamespaceStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Namespace, "", "v1", "Namespace", "namespaces", false);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSpec {
    /// `["kubernetes"]` until the namespace controller has emptied the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    /// `Active` or `Terminating`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// Pod

/// A pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: PodSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: PodStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Pod, "", "v1", "Pod", "pods", true);

impl Pod {
    /// The pod ran to completion or failed (phase `Succeeded` or `Failed`): its containers
    /// will not run again, and it holds no resources on its node.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.phase.as_str(), "Succeeded" | "Failed")
    }

    /// Upstream `IsPodActive`: not finished and not being deleted, so it counts towards a
    /// workload's replicas.
    pub fn is_active(&self) -> bool {
        !self.is_finished() && self.metadata.deletion_timestamp.is_none()
    }

    /// The pod's `Ready` condition, if the kubelet reported one.
    pub fn ready_condition(&self) -> Option<&PodCondition> {
        self.status.conditions.iter().find(|c| c.type_ == "Ready")
    }

    /// Upstream `IsPodReady`: the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.ready_condition().is_some_and(PodCondition::is_true)
    }
}

/// A pod template (`spec.template` of workload controllers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// Always written: upstream templates always carry `metadata` (at least its labels).
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: PodSpec,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Set by the scheduler (through a Binding); empty while the pod is unscheduled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Kept as JSON: node/pod (anti-)affinity is a deep tree the scheduler walks itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
    /// `Always`, `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Kept as JSON: a volume is one of some thirty source types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Always written, as `{}` when empty: the API server does so for every container.
    #[serde(default)]
    pub resources: ResourceRequirements,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Kept as JSON: a reference to a field, resource, ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Required upstream, so always written.
    #[serde(default)]
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: ResourceList,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A liveness, readiness or startup check: one of `exec`, `httpGet`, `tcpSocket` (`grpc`
/// stays in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HTTPGetAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TCPSocketAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecAction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPGetAction {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// A number or a container port's name. Required upstream, so always written.
    #[serde(default)]
    pub port: IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// `HTTP` or `HTTPS`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TCPSocketAction {
    /// A number or a container port's name. Required upstream, so always written.
    #[serde(default)]
    pub port: IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Empty with `operator: Exists` tolerates every taint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `Equal` (the default) or `Exists`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`, or empty for all three.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub effect: String,
    /// For `NoExecute`: how long the pod stays bound after the taint appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    #[serde(rename = "podIP", default, skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    #[serde(rename = "podIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIP>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    /// `Guaranteed`, `Burstable` or `BestEffort`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qos_class: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nominated_node_name: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    /// `PodScheduled`, `Initialized`, `ContainersReady`, `Ready`, ...
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Go writes `null` here when unset (nearly always); it reads as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl PodCondition {
    /// The condition holds (`status` is `True`; `False` and `Unknown` do not).
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIP {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Required upstream, so always written (even empty, as for `imageID` of a container
    /// still pulling).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default)]
    pub image: String,
    #[serde(rename = "imageID", default)]
    pub image_id: String,
    #[serde(
        rename = "containerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    /// `Some` even when empty: the kubelet writes `"lastState": {}` for a container that
    /// never restarted, and it survives a round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<ContainerState>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// At most one of `waiting`, `running`, `terminated` is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<ContainerStateWaiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<ContainerStateRunning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<ContainerStateTerminated>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateWaiting {
    /// `ContainerCreating`, `ImagePullBackOff`, `CrashLoopBackOff`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateRunning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateTerminated {
    /// Required upstream, so always written (0 is a success, not an absence).
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// Node

/// A node (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: NodeSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: NodeStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Node, "", "v1", "Node", "nodes", false);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(rename = "podCIDR", default, skip_serializing_if = "String::is_empty")]
    pub pod_cidr: String,
    #[serde(rename = "podCIDRs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
    /// Cordoned: no new pods are scheduled here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_id: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub effect: String,
    /// Set for `NoExecute` taints (tolerationSeconds counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: ResourceList,
    /// What the scheduler may hand out: capacity less system reservations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: ResourceList,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<NodeCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_endpoints: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCondition {
    /// `Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, `NetworkUnavailable`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the kubelet last reported the condition (the node lifecycle controller's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, ...
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// Service and Endpoints

/// A service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: ServiceSpec,
    /// Upstream writes `{"loadBalancer": {}}` for every service; that equals the default,
    /// so it is not written back (see `api::kind`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: ServiceStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Service, "", "v1", "Service", "services", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (the default), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// Pods with these labels back the service; empty means endpoints are managed by hand.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// `None` for a headless service.
    #[serde(
        rename = "clusterIP",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_ip: String,
    #[serde(rename = "clusterIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_ips: Vec<String>,
    #[serde(rename = "externalIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_affinity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_traffic_policy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub internal_traffic_policy: String,
    #[serde(
        rename = "loadBalancerIP",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub load_balancer_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_family_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_not_ready_addresses: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Required upstream, so always written.
    #[serde(default)]
    pub port: i32,
    /// A number or the name of a container port; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Always written, as upstream does.
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIngress {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The addresses behind a service (the older API; EndpointSlices in `discovery` supersede
/// it, but kubectl and many clients still read it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<EndpointSubset>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Endpoints, "", "v1", "Endpoints", "endpoints", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSubset {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAddress {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Required upstream, so always written.
    #[serde(default)]
    pub port: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// Configuration and identity

/// A config map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Values are base64 text, as on the wire.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(ConfigMap, "", "v1", "ConfigMap", "configmaps", true);

/// A secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `Opaque`, `kubernetes.io/service-account-token`, `kubernetes.io/tls`, ...
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// Values are base64 text, as on the wire; decoding is the reader's choice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Write-only plain text, merged into `data` by the API server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Secret, "", "v1", "Secret", "secrets", true);

/// A service account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    ServiceAccount,
    "",
    "v1",
    "ServiceAccount",
    "serviceaccounts",
    true
);

// ---------------------------------------------------------------------------------------
// Event and Binding

/// A `core/v1` event (what `kubectl describe` and `kubectl get events` show).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The object the event is about. Required upstream; omitted only when empty.
    #[serde(default, skip_serializing_if = "is_default")]
    pub involved_object: ObjectReference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
    /// A MicroTime (`2026-11-27T02:24:45.123456Z`); Go writes `null` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EventSource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Event, "", "v1", "Event", "events", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Binds a pod to a node: the scheduler POSTs it to `pods/{name}/binding`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The node (`kind: Node`, `name`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub target: ObjectReference,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Binding, "", "v1", "Binding", "bindings", true);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use proptest::prelude::*;
    use serde_json::json;

    /// Parses `raw` as a `K`, checks that writing it back gives `raw` exactly, and returns it.
    fn round_trip<K: Kind + std::fmt::Debug + PartialEq>(raw: &Value) -> K {
        let typed: K = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&typed).unwrap(), raw);
        let again: K = serde_json::from_value(serde_json::to_value(&typed).unwrap()).unwrap();
        assert_eq!(again, typed);
        typed
    }

    /// `raw` without `null` members: Go writes `null` for unset timestamps, which we read as
    /// absent and do not write back.
    fn without_nulls(raw: &Value) -> Value {
        match raw {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), without_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
            v => v.clone(),
        }
    }

    fn minimal<K: Kind + Default>() {
        assert_eq!(
            serde_json::to_value(K::default()).unwrap(),
            json!({"metadata": {}}),
            "{}",
            K::KIND
        );
    }

    #[test]
    fn default_objects_serialize_to_bare_metadata() {
        minimal::<Namespace>();
        minimal::<Pod>();
        minimal::<Node>();
        minimal::<Service>();
        minimal::<Endpoints>();
        minimal::<ConfigMap>();
        minimal::<Secret>();
        minimal::<ServiceAccount>();
        minimal::<Event>();
        minimal::<Binding>();
    }

    #[test]
    fn kinds_know_their_resources() {
        assert_eq!(Pod::api_version(), "v1");
        assert_eq!((Pod::PLURAL, Pod::NAMESPACED), ("pods", true));
        assert_eq!((Node::PLURAL, Node::NAMESPACED), ("nodes", false));
        assert_eq!(
            (Namespace::KIND, Namespace::NAMESPACED),
            ("Namespace", false)
        );
        assert_eq!(Endpoints::PLURAL, "endpoints");
        assert_eq!(ServiceAccount::PLURAL, "serviceaccounts");
        let mut cm = ConfigMap::default();
        cm.metadata.name = "c".into();
        assert_eq!(
            to_json(&cm),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        );
    }

    fn running_pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": "2026-11-27T02:20:11Z",
                "generateName": "web-7d9f8b6c5d-",
                "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"},
                "name": "web-7d9f8b6c5d-x2k4q",
                "namespace": "default",
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                    "kind": "ReplicaSet", "name": "web-7d9f8b6c5d",
                    "uid": "3f1c2a9e-5b7d-4c1e-9a2f-8e6d4b3c2a10"
                }],
                "resourceVersion": "48211",
                "uid": "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
                "managedFields": [{
                    "apiVersion": "v1", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
                    "manager": "kube-controller-manager", "operation": "Update",
                    "time": "2026-11-27T02:20:11Z"
                }]
            },
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                    ]}]
                }}},
                "containers": [{
                    "args": ["--port=8080"],
                    "command": ["/app/server"],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "status.podIP"}}}
                    ],
                    "image": "registry.example.com/web:1.4.2",
                    "imagePullPolicy": "IfNotPresent",
                    "livenessProbe": {
                        "failureThreshold": 3,
                        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "initialDelaySeconds": 5, "periodSeconds": 10,
                        "successThreshold": 1, "timeoutSeconds": 1
                    },
                    "name": "web",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "readinessProbe": {
                        "failureThreshold": 3, "periodSeconds": 5, "successThreshold": 1,
                        "tcpSocket": {"port": "http"}, "timeoutSeconds": 1
                    },
                    "resources": {
                        "limits": {"memory": "256Mi"},
                        "requests": {"cpu": "100m", "memory": "128Mi"}
                    },
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
                    "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                     "failureThreshold": 30, "periodSeconds": 2,
                                     "successThreshold": 1, "timeoutSeconds": 1},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                      "name": "kube-api-access-8xq2m", "readOnly": true}],
                    "workingDir": "/app"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "initContainers": [{
                    "command": ["sh", "-c", "until nslookup db; do sleep 1; done"],
                    "image": "busybox:1.36",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "wait-db",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "nodeName": "worker-2",
                "nodeSelector": {"disktype": "ssd"},
                "preemptionPolicy": "PreemptLowerPriority",
                "priority": 0,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "serviceAccount": "default",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
                "tolerations": [
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                     "operator": "Exists", "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
                     "operator": "Exists", "tolerationSeconds": 300}
                ],
                "topologySpreadConstraints": [{"labelSelector": {"matchLabels": {"app": "web"}},
                    "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway"}],
                "volumes": [{"name": "kube-api-access-8xq2m", "projected": {
                    "defaultMode": 420, "sources": [{"serviceAccountToken": {
                        "expirationSeconds": 3607, "path": "token"}}]}}]
            },
            "status": {
                "conditions": [
                    {"lastProbeTime": null, "lastTransitionTime": "2026-11-27T02:20:14Z",
                     "status": "True", "type": "Initialized"},
                    {"lastProbeTime": null, "lastTransitionTime": "2026-11-27T02:20:19Z",
                     "status": "True", "type": "Ready"},
                    {"lastProbeTime": null, "lastTransitionTime": "2026-11-27T02:20:11Z",
                     "status": "True", "type": "PodScheduled"}
                ],
                "containerStatuses": [{
                    "containerID": "containerd://5e4d3c2b1a09f8e7d6c5b4a3928170615f4e3d2c",
                    "image": "registry.example.com/web:1.4.2",
                    "imageID": "registry.example.com/web@sha256:0123456789abcdef",
                    "lastState": {"terminated": {
                        "containerID": "containerd://0a1b2c", "exitCode": 137,
                        "finishedAt": "2026-11-27T02:20:16Z", "reason": "OOMKilled",
                        "startedAt": "2026-11-27T02:20:15Z"}},
                    "name": "web",
                    "ready": true,
                    "restartCount": 1,
                    "started": true,
                    "state": {"running": {"startedAt": "2026-11-27T02:20:17Z"}}
                }],
                "hostIP": "10.0.0.12",
                "hostIPs": [{"ip": "10.0.0.12"}],
                "initContainerStatuses": [{
                    "image": "busybox:1.36", "imageID": "", "lastState": {},
                    "name": "wait-db", "ready": true, "restartCount": 0, "started": false,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
                }],
                "phase": "Running",
                "podIP": "10.244.2.17",
                "podIPs": [{"ip": "10.244.2.17"}],
                "qosClass": "Burstable",
                "startTime": "2026-11-27T02:20:11Z"
            }
        })
    }

    #[test]
    fn a_running_pod_round_trips_with_every_field() {
        let raw = running_pod();
        // Everything but the `lastProbeTime: null`s must come back byte for byte.
        let expected = without_nulls(&raw);
        let pod: Pod = serde_json::from_value(raw).unwrap();
        assert_eq!(serde_json::to_value(&pod).unwrap(), expected);
        round_trip::<Pod>(&expected);

        let c = &pod.spec.containers[0];
        assert_eq!(c.name, "web");
        assert_eq!(c.command, ["/app/server"]);
        assert_eq!(c.working_dir, "/app");
        assert_eq!(c.env[0].value, "prod");
        assert!(c.env[1].value_from.is_some());
        assert_eq!(c.ports[0].container_port, 8080);
        assert_eq!(c.resources.requests["cpu"], "100m");
        assert_eq!(c.resources.limits["memory"], "256Mi");
        let live = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(live.port, IntOrString::Int(8080));
        assert_eq!(live.path, "/healthz");
        let ready = c.readiness_probe.as_ref().unwrap();
        assert_eq!(ready.tcp_socket.as_ref().unwrap().port, "http".into());
        assert_eq!(ready.period_seconds, Some(5));
        let startup = c.startup_probe.as_ref().unwrap();
        assert_eq!(
            startup.exec.as_ref().unwrap().command,
            ["cat", "/tmp/ready"]
        );
        assert_eq!(startup.failure_threshold, Some(30));
        assert!(c.extra.contains_key("securityContext"));
        assert_eq!(c.volume_mounts.len(), 1);
        assert_eq!(pod.spec.init_containers[0].name, "wait-db");
        assert_eq!(pod.spec.node_name, "worker-2");
        assert_eq!(pod.spec.node_selector["disktype"], "ssd");
        assert_eq!(pod.spec.priority, Some(0));
        assert_eq!(pod.spec.termination_grace_period_seconds, Some(30));
        assert_eq!(pod.spec.tolerations[1].toleration_seconds, Some(300));
        assert_eq!(pod.spec.tolerations[0].operator, "Exists");
        assert_eq!(pod.spec.dns_policy, "ClusterFirst");
        assert_eq!(pod.spec.topology_spread_constraints.len(), 1);
        assert!(pod.spec.affinity.is_some());

        let s = &pod.status;
        assert_eq!(s.phase, "Running");
        assert_eq!(s.conditions[1].type_, "Ready");
        assert_eq!(s.conditions[1].last_probe_time, None);
        assert_eq!(s.host_ip, "10.0.0.12");
        assert_eq!(s.pod_ips[0].ip, "10.244.2.17");
        assert_eq!(s.qos_class, "Burstable");
        let cs = &s.container_statuses[0];
        assert!(cs.ready);
        assert_eq!(cs.restart_count, 1);
        assert_eq!(cs.started, Some(true));
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((last.exit_code, last.reason.as_str()), (137, "OOMKilled"));
        let running = cs.state.as_ref().unwrap().running.as_ref().unwrap();
        assert_eq!(running.started_at.as_deref(), Some("2026-11-27T02:20:17Z"));
        assert!(s.extra.contains_key("initContainerStatuses"));

        assert_eq!(
            to_json(&pod)["metadata"]["managedFields"][0]["manager"],
            "kube-controller-manager"
        );
    }

    #[test]
    fn a_waiting_container_keeps_its_zero_and_empty_fields() {
        // The kubelet's report for a container still being created: zero, false and empty
        // values that mean something, all written back.
        let raw = json!({
            "image": "nginx:1.27", "imageID": "", "lastState": {}, "name": "nginx",
            "ready": false, "restartCount": 0, "started": false,
            "state": {"waiting": {"reason": "ContainerCreating"}}
        });
        let cs: ContainerStatus = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(cs.last_state, Some(ContainerState::default()));
        let waiting = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(waiting.reason, "ContainerCreating");
        assert_eq!(serde_json::to_value(&cs).unwrap(), raw);
    }

    #[test]
    fn pod_predicates_follow_phase_deletion_and_the_ready_condition() {
        let mut pod = Pod::default();
        assert!(!pod.is_finished() && pod.is_active() && !pod.is_ready());
        assert_eq!(pod.ready_condition(), None);
        for (phase, finished) in [
            ("Pending", false),
            ("Running", false),
            ("Unknown", false),
            ("Succeeded", true),
            ("Failed", true),
        ] {
            pod.status.phase = phase.into();
            assert_eq!(pod.is_finished(), finished, "{phase}");
            assert_eq!(pod.is_active(), !finished, "{phase}");
        }
        pod.status.phase = "Running".into();
        pod.metadata.deletion_timestamp = Some("2026-11-27T02:20:11Z".into());
        assert!(!pod.is_finished() && !pod.is_active(), "being deleted");
        let condition = |type_: &str, status: &str| PodCondition {
            type_: type_.into(),
            status: status.into(),
            ..PodCondition::default()
        };
        pod.status.conditions = vec![condition("ContainersReady", "True")];
        assert!(!pod.is_ready(), "only the Ready condition counts");
        for (status, ready) in [("False", false), ("Unknown", false), ("True", true)] {
            pod.status.conditions = vec![
                condition("PodScheduled", "True"),
                condition("Ready", status),
            ];
            assert_eq!(pod.ready_condition(), Some(&pod.status.conditions[1]));
            assert_eq!(pod.is_ready(), ready, "{status}");
        }
    }

    #[test]
    fn owner_references_are_typed_over_metadata() {
        let pod: Pod = serde_json::from_value(running_pod()).unwrap();
        let owners = owner_references(&pod.metadata);
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "ReplicaSet");
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert_eq!(controller_of(&pod.metadata).unwrap().name, "web-7d9f8b6c5d");

        let mut meta = ObjectMeta::default();
        assert!(owner_references(&meta).is_empty());
        assert_eq!(controller_of(&meta), None);
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "u-1".into(),
            controller: Some(true),
            ..Default::default()
        };
        set_owner_references(&mut meta, std::slice::from_ref(&owner));
        assert_eq!(
            serde_json::to_value(&meta).unwrap(),
            json!({"ownerReferences": [{"apiVersion": "apps/v1", "controller": true,
                                        "kind": "Deployment", "name": "web", "uid": "u-1"}]})
        );
        assert_eq!(owner_references(&meta), vec![owner]);
        set_owner_references(&mut meta, &[]);
        assert_eq!(serde_json::to_value(&meta).unwrap(), json!({}));

        meta.extra
            .insert("ownerReferences".into(), json!([{"kind": "A"}, 7]));
        assert!(
            owner_references(&meta).is_empty(),
            "malformed reads as none"
        );
    }

    #[test]
    fn int_or_string_reads_numbers_names_and_percentages() {
        let parse = |v: Value| serde_json::from_value::<IntOrString>(v).unwrap();
        assert_eq!(parse(json!(8080)), IntOrString::Int(8080));
        assert_eq!(parse(json!("http")), IntOrString::String("http".into()));
        assert_eq!(parse(json!("25%")), IntOrString::String("25%".into()));
        assert_eq!(
            serde_json::to_value(IntOrString::Int(80)).unwrap(),
            json!(80)
        );
        assert_eq!(
            serde_json::to_value(IntOrString::from("25%")).unwrap(),
            json!("25%")
        );
        assert_eq!(IntOrString::default(), IntOrString::Int(0));
        assert!(serde_json::from_value::<IntOrString>(json!(1.5)).is_err());

        let port: ServicePort =
            serde_json::from_value(json!({"port": 80, "targetPort": "http"})).unwrap();
        assert_eq!(port.target_port, Some("http".into()));

        // maxSurge rounds up, maxUnavailable down (10 replicas, 25%: 3 and 2).
        assert_eq!(IntOrString::from("25%").scaled_value(10, true), Some(3));
        assert_eq!(IntOrString::from("25%").scaled_value(10, false), Some(2));
        assert_eq!(IntOrString::from("100%").scaled_value(7, false), Some(7));
        assert_eq!(IntOrString::from("0%").scaled_value(7, true), Some(0));
        assert_eq!(IntOrString::from(2).scaled_value(10, true), Some(2));
        assert_eq!(IntOrString::from("http").scaled_value(10, true), None);
        assert_eq!(IntOrString::from(1_i64 << 40).scaled_value(10, true), None);
    }

    #[test]
    fn a_namespace_round_trips() {
        let ns: Namespace = round_trip(&json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"creationTimestamp": "2026-11-26T23:07:07Z",
                         "labels": {"kubernetes.io/metadata.name": "team-a"},
                         "name": "team-a", "resourceVersion": "812",
                         "uid": "c0ffee00-0000-4000-8000-000000000001"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating", "conditions": [{
                "lastTransitionTime": "2026-11-27T01:00:00Z",
                "message": "All resources successfully discovered",
                "reason": "ResourcesDiscovered", "status": "False",
                "type": "NamespaceDeletionDiscoveryFailure"}]}
        }));
        assert_eq!(ns.spec.finalizers, ["kubernetes"]);
        assert_eq!(ns.status.phase, "Terminating");
        assert!(ns.status.extra.contains_key("conditions"));
    }

    #[test]
    fn a_node_round_trips() {
        let node: Node = round_trip(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": "worker-2",
                                    "node-role.kubernetes.io/worker": ""},
                         "name": "worker-2", "resourceVersion": "50012",
                         "uid": "0d0e0f10-1112-4314-9516-171819202122"},
            "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"],
                     "providerID": "kind://docker/kind/worker-2",
                     "taints": [{"effect": "NoSchedule", "key": "dedicated", "value": "gpu"},
                                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
                                 "timeAdded": "2026-11-27T02:00:00Z"}],
                     "unschedulable": true},
            "status": {
                "addresses": [{"address": "10.0.0.12", "type": "InternalIP"},
                              {"address": "worker-2", "type": "Hostname"}],
                "allocatable": {"cpu": "3800m", "ephemeral-storage": "95Gi",
                                "memory": "7Gi", "pods": "110"},
                "capacity": {"cpu": "4", "ephemeral-storage": "100Gi",
                             "memory": "8Gi", "pods": "110"},
                "conditions": [{"lastHeartbeatTime": "2026-11-27T02:24:40Z",
                                "lastTransitionTime": "2026-11-26T23:08:00Z",
                                "message": "kubelet is posting ready status",
                                "reason": "KubeletReady", "status": "True", "type": "Ready"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "images": [{"names": ["busybox:1.36"], "sizeBytes": 2_155_254}],
                "nodeInfo": {"architecture": "amd64", "kubeletVersion": "v1.31.0",
                             "operatingSystem": "linux"}
            }
        }));
        assert_eq!(node.spec.pod_cidr, "10.244.2.0/24");
        assert_eq!(node.spec.provider_id, "kind://docker/kind/worker-2");
        assert_eq!(node.spec.unschedulable, Some(true));
        assert_eq!(node.spec.taints[0].value, "gpu");
        assert_eq!(
            node.spec.taints[1].time_added.as_deref(),
            Some("2026-11-27T02:00:00Z")
        );
        assert_eq!(node.status.allocatable["cpu"], "3800m");
        assert_eq!(node.status.capacity["pods"], "110");
        assert_eq!(node.status.conditions[0].type_, "Ready");
        assert_eq!(node.status.addresses[0].type_, "InternalIP");
        assert_eq!(
            node.status.node_info.as_ref().unwrap()["kubeletVersion"],
            "v1.31.0"
        );
    }

    #[test]
    fn a_load_balancer_service_round_trips() {
        let svc: Service = round_trip(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "700",
                         "uid": "51515151-aaaa-4bbb-8ccc-dddddddddddd"},
            "spec": {
                "allocateLoadBalancerNodePorts": true,
                "clusterIP": "10.96.14.7", "clusterIPs": ["10.96.14.7"],
                "externalIPs": ["203.0.113.9"],
                "externalTrafficPolicy": "Local", "healthCheckNodePort": 31999,
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "loadBalancerIP": "198.51.100.4",
                "ports": [
                    {"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP",
                     "targetPort": "http"},
                    {"appProtocol": "https", "name": "https", "nodePort": 30443,
                     "port": 443, "protocol": "TCP", "targetPort": 8443}
                ],
                "publishNotReadyAddresses": false,
                "selector": {"app": "web"},
                "sessionAffinity": "None",
                "type": "LoadBalancer"
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.4", "ipMode": "VIP"}]}}
        }));
        assert_eq!(svc.spec.type_, "LoadBalancer");
        assert_eq!(svc.spec.cluster_ip, "10.96.14.7");
        assert_eq!(svc.spec.external_ips, ["203.0.113.9"]);
        assert_eq!(svc.spec.load_balancer_ip, "198.51.100.4");
        assert_eq!(svc.spec.selector["app"], "web");
        assert_eq!(svc.spec.publish_not_ready_addresses, Some(false));
        assert_eq!(svc.spec.ports[0].target_port, Some("http".into()));
        assert_eq!(svc.spec.ports[1].target_port, Some(IntOrString::Int(8443)));
        assert_eq!(svc.spec.ports[1].node_port, Some(30443));
        assert_eq!(svc.status.load_balancer.ingress[0].ip, "198.51.100.4");
    }

    #[test]
    fn an_empty_service_status_reads_as_default_and_is_not_written_back() {
        let raw = json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}], "selector": {"app": "db"}},
            "status": {"loadBalancer": {}}
        });
        let svc: Service = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(svc.status, ServiceStatus::default());
        let mut expected = raw;
        expected.as_object_mut().unwrap().remove("status");
        assert_eq!(serde_json::to_value(&svc).unwrap(), expected);
        // A non-empty status keeps `loadBalancer: {}` beside what it holds, as upstream.
        let mut with_condition = svc.clone();
        with_condition
            .status
            .extra
            .insert("conditions".into(), json!([]));
        assert_eq!(
            serde_json::to_value(&with_condition).unwrap()["status"],
            json!({"conditions": [], "loadBalancer": {}})
        );
    }

    #[test]
    fn endpoints_round_trip() {
        let ep: Endpoints = round_trip(&json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"annotations": {
                             "endpoints.kubernetes.io/last-change-trigger-time":
                                 "2026-11-27T02:20:19Z"},
                         "labels": {"app": "web"}, "name": "web", "namespace": "default"},
            "subsets": [{
                "addresses": [{"ip": "10.244.2.17", "nodeName": "worker-2",
                               "targetRef": {"kind": "Pod", "name": "web-7d9f8b6c5d-x2k4q",
                                             "namespace": "default",
                                             "uid": "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d"}}],
                "notReadyAddresses": [{"hostname": "web-1", "ip": "10.244.1.9",
                                       "nodeName": "worker-1"}],
                "ports": [{"appProtocol": "http", "name": "http", "port": 8080,
                           "protocol": "TCP"}]
            }]
        }));
        let subset = &ep.subsets[0];
        assert_eq!(subset.addresses[0].ip, "10.244.2.17");
        let target = subset.addresses[0].target_ref.as_ref().unwrap();
        assert_eq!(
            (target.kind.as_str(), target.namespace.as_str()),
            ("Pod", "default")
        );
        assert_eq!(subset.not_ready_addresses[0].hostname, "web-1");
        assert_eq!(subset.ports[0].port, 8080);
        assert_eq!(subset.ports[0].protocol, "TCP");
    }

    #[test]
    fn config_maps_secrets_and_service_accounts_round_trip() {
        let cm: ConfigMap = round_trip(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "binaryData": {"logo.png": "iVBORw0KGgo="},
            "data": {"app.properties": "mode=prod\nport=8080\n", "empty": ""},
            "immutable": true,
            "metadata": {"name": "web-config", "namespace": "default",
                         "resourceVersion": "901"}
        }));
        assert_eq!(cm.data["app.properties"], "mode=prod\nport=8080\n");
        assert_eq!(cm.data["empty"], "");
        assert_eq!(cm.binary_data["logo.png"], "iVBORw0KGgo=");
        assert_eq!(cm.immutable, Some(true));

        let secret: Secret = round_trip(&json!({
            "apiVersion": "v1", "kind": "Secret",
            "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "LS0tLS1CRUdJTg=="},
            "metadata": {"name": "web-tls", "namespace": "default"},
            "stringData": {"note": "plain"},
            "type": "kubernetes.io/tls"
        }));
        assert_eq!(secret.type_, "kubernetes.io/tls");
        assert_eq!(secret.data["tls.crt"], "LS0tLS1CRUdJTg==");
        assert_eq!(secret.string_data["note"], "plain");
        assert_eq!(secret.immutable, None);

        let sa: ServiceAccount = round_trip(&json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "automountServiceAccountToken": false,
            "imagePullSecrets": [{"name": "regcred"}],
            "metadata": {"name": "builder", "namespace": "ci"},
            "secrets": [{"name": "builder-token-abcde"}]
        }));
        assert_eq!(sa.secrets[0].name, "builder-token-abcde");
        assert_eq!(sa.automount_service_account_token, Some(false));
        assert!(sa.extra.contains_key("imagePullSecrets"));
    }

    #[test]
    fn events_round_trip() {
        let raw = json!({
            "action": "Binding",
            "apiVersion": "v1",
            "count": 2,
            "eventTime": null,
            "firstTimestamp": "2026-11-27T02:20:11Z",
            "involvedObject": {"apiVersion": "v1", "fieldPath": "spec.containers{web}",
                               "kind": "Pod", "name": "web-7d9f8b6c5d-x2k4q",
                               "namespace": "default", "resourceVersion": "48200",
                               "uid": "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d"},
            "kind": "Event",
            "lastTimestamp": "2026-11-27T02:20:16Z",
            "message": "Back-off restarting failed container web",
            "metadata": {"name": "web-7d9f8b6c5d-x2k4q.187b2c3d4e5f6a7b",
                         "namespace": "default"},
            "reason": "BackOff",
            "reportingComponent": "kubelet",
            "reportingInstance": "worker-2",
            "source": {"component": "kubelet", "host": "worker-2"},
            "type": "Warning"
        });
        let expected = without_nulls(&raw);
        let ev: Event = serde_json::from_value(raw).unwrap();
        assert_eq!(serde_json::to_value(&ev).unwrap(), expected);
        assert_eq!(ev.involved_object.field_path, "spec.containers{web}");
        assert_eq!(ev.involved_object.resource_version, "48200");
        assert_eq!(ev.type_, "Warning");
        assert_eq!(ev.count, Some(2));
        assert_eq!(ev.event_time, None);
        assert_eq!(ev.source.as_ref().unwrap().host, "worker-2");
        assert_eq!(ev.reporting_instance, "worker-2");
        assert_eq!(ev.action, "Binding");

        let modern: Event = round_trip(&json!({
            "eventTime": "2026-11-27T02:24:45.123456Z",
            "involvedObject": {"kind": "Node", "name": "worker-2"},
            "metadata": {"name": "worker-2.1", "namespace": "default"},
            "reason": "Starting", "reportingComponent": "kube-proxy", "series": {"count": 3},
            "source": {}, "type": "Normal"
        }));
        assert_eq!(
            modern.event_time.as_deref(),
            Some("2026-11-27T02:24:45.123456Z")
        );
        assert_eq!(modern.source, Some(EventSource::default()));
    }

    #[test]
    fn bindings_round_trip() {
        let b: Binding = round_trip(&json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "web-7d9f8b6c5d-x2k4q", "namespace": "default",
                         "uid": "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "worker-2"}
        }));
        assert_eq!(b.target.name, "worker-2");
        assert_eq!(
            to_json(&Binding::default()),
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {}})
        );
    }

    fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)
    }

    proptest! {
        #[test]
        fn config_map_data_and_labels_survive_json(
            data in string_map(), labels in string_map(), binary in string_map()
        ) {
            let mut cm = ConfigMap::default();
            cm.metadata.name = "c".into();
            cm.metadata.labels = labels;
            cm.data = data;
            cm.binary_data = binary;
            let text = serde_json::to_string(&cm).unwrap();
            let back: ConfigMap = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &cm);
            // Through `to_json`, the same data plus apiVersion/kind (kept in `extra`).
            let via_kind: ConfigMap = serde_json::from_value(to_json(&cm)).unwrap();
            prop_assert_eq!(&via_kind.data, &cm.data);
            prop_assert_eq!(&via_kind.metadata.labels, &cm.metadata.labels);
            prop_assert_eq!(&via_kind.binary_data, &cm.binary_data);
            prop_assert_eq!(via_kind.extra.len(), 2);
        }
    }
}
