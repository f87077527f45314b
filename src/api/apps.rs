//! Typed `apps/v1` workloads (Deployment, ReplicaSet, DaemonSet), the objects the workload
//! controllers reconcile. Pod templates and label selectors come from `core` and `selector`;
//! serialization follows the conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::core::{IntOrString, PodTemplateSpec};
use super::kind::is_default;
use super::selector::LabelSelector;
use super::ObjectMeta;
use crate::kind;

/// `spec.replicas` of a Deployment or ReplicaSet that does not say (upstream defaulting).
pub const DEFAULT_REPLICAS: i32 = 1;

// ---------------------------------------------------------------------------------------
// Deployment

/// A deployment: rolls a pod template out through ReplicaSets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: DeploymentSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: DeploymentStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Deployment, "apps", "v1", "Deployment", "deployments", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Desired pods; upstream defaults an absent value to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub template: PodTemplateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStrategy {
    /// `RollingUpdate` (the default) or `Recreate`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdateDeployment>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// How far a rollout may go below and above the desired count: a number or a percentage
/// (`IntOrString::scaled_value` turns it into a count; surge rounds up, unavailable down).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateDeployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// The `metadata.generation` this status describes; a rollout is observed once it
    /// catches up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<DeploymentCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCondition {
    /// `Available`, `Progressing` or `ReplicaFailure`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// ReplicaSet

/// A replica set: keeps `replicas` pods matching its selector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: ReplicaSetSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: ReplicaSetStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(ReplicaSet, "apps", "v1", "ReplicaSet", "replicasets", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetSpec {
    /// Desired pods; upstream defaults an absent value to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub template: PodTemplateSpec,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetStatus {
    /// Required upstream, so always written (`"replicas": 0` for a scaled-down set).
    #[serde(default)]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_labeled_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// ---------------------------------------------------------------------------------------
// DaemonSet

/// A daemon set: one pod per eligible node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: DaemonSetSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub status: DaemonSetStatus,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(DaemonSet, "apps", "v1", "DaemonSet", "daemonsets", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "is_default")]
    pub template: PodTemplateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DaemonSetUpdateStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetUpdateStrategy {
    /// `RollingUpdate` (the default) or `OnDelete`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdateDaemonSet>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateDaemonSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetStatus {
    /// The four counters are required upstream, so always written (zeros included).
    #[serde(default)]
    pub current_number_scheduled: i32,
    #[serde(default)]
    pub number_misscheduled: i32,
    #[serde(default)]
    pub desired_number_scheduled: i32,
    #[serde(default)]
    pub number_ready: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_unavailable: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::core::owner_references;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    /// Parses `raw` as a `K` and checks that writing it back gives `expected` exactly.
    fn round_trip<K: Kind + std::fmt::Debug + PartialEq>(raw: Value, expected: &Value) -> K {
        let typed: K = serde_json::from_value(raw).unwrap();
        assert_eq!(&serde_json::to_value(&typed).unwrap(), expected);
        let again: K = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(again, typed);
        typed
    }

    /// Removes `template.metadata.creationTimestamp` (Go writes `null` there; it reads as
    /// absent and is not written back).
    fn without_template_null(raw: &Value) -> Value {
        let mut v = raw.clone();
        let meta = v["spec"]["template"]["metadata"].as_object_mut().unwrap();
        assert!(meta.remove("creationTimestamp").unwrap().is_null());
        v
    }

    fn template() -> Value {
        json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "image": "registry.example.com/web:1.4.2",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "web",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m"}},
                    "securityContext": {"readOnlyRootFilesystem": true},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    #[test]
    fn default_objects_serialize_to_bare_metadata() {
        for v in [
            serde_json::to_value(Deployment::default()).unwrap(),
            serde_json::to_value(ReplicaSet::default()).unwrap(),
            serde_json::to_value(DaemonSet::default()).unwrap(),
        ] {
            assert_eq!(v, json!({"metadata": {}}));
        }
    }

    #[test]
    fn to_json_names_the_apps_group() {
        let mut d = Deployment::default();
        d.metadata.name = "web".into();
        d.spec.replicas = Some(3);
        assert_eq!(
            to_json(&d),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web"}, "spec": {"replicas": 3}})
        );
        assert_eq!(Deployment::api_version(), "apps/v1");
        assert_eq!(
            (ReplicaSet::PLURAL, DaemonSet::PLURAL),
            ("replicasets", "daemonsets")
        );
        assert_eq!(
            (ReplicaSet::NAMESPACED, DaemonSet::NAMESPACED),
            (true, true)
        );
    }

    #[test]
    fn a_deployment_round_trips() {
        let raw = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "creationTimestamp": "2026-11-27T02:00:00Z",
                "generation": 4,
                "labels": {"app": "web"},
                "managedFields": [{"apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:spec": {"f:replicas": {}}},
                                   "manager": "kubectl", "operation": "Update",
                                   "time": "2026-11-27T02:00:00Z"}],
                "name": "web", "namespace": "default", "resourceVersion": "48250",
                "uid": "aaaa0000-bbbb-4ccc-8ddd-eeeeffff0000"
            },
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 3,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                             "type": "RollingUpdate"},
                "minReadySeconds": 5,
                "paused": false,
                "template": template()
            },
            "status": {
                "availableReplicas": 2,
                "collisionCount": 1,
                "conditions": [
                    {"lastTransitionTime": "2026-11-27T02:00:30Z",
                     "lastUpdateTime": "2026-11-27T02:00:30Z",
                     "message": "Deployment does not have minimum availability.",
                     "reason": "MinimumReplicasUnavailable", "status": "False",
                     "type": "Available"},
                    {"lastTransitionTime": "2026-11-27T02:00:00Z",
                     "lastUpdateTime": "2026-11-27T02:20:19Z",
                     "message": "ReplicaSet \"web-7d9f8b6c5d\" is progressing.",
                     "reason": "ReplicaSetUpdated", "status": "True", "type": "Progressing"}
                ],
                "observedGeneration": 4,
                "readyReplicas": 2,
                "replicas": 4,
                "terminatingReplicas": 0,
                "unavailableReplicas": 2,
                "updatedReplicas": 2
            }
        });
        let expected = without_template_null(&raw);
        let d: Deployment = round_trip(raw, &expected);
        assert_eq!(d.metadata.generation, 4);
        assert_eq!(d.spec.replicas, Some(3));
        assert_eq!(d.spec.selector.match_labels["app"], "web");
        assert_eq!(d.spec.template.metadata.labels["app"], "web");
        assert_eq!(d.spec.template.spec.containers[0].name, "web");
        assert!(d.spec.template.spec.containers[0]
            .extra
            .contains_key("securityContext"));
        let strategy = d.spec.strategy.as_ref().unwrap();
        assert_eq!(strategy.type_, "RollingUpdate");
        let rolling = strategy.rolling_update.as_ref().unwrap();
        assert_eq!(rolling.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(
            rolling.max_surge.as_ref().unwrap().scaled_value(3, true),
            Some(1)
        );
        assert_eq!(d.spec.min_ready_seconds, Some(5));
        assert_eq!(d.spec.revision_history_limit, Some(10));
        assert_eq!(d.spec.paused, Some(false));
        assert_eq!(d.spec.progress_deadline_seconds, Some(600));
        let s = &d.status;
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(
            (s.replicas, s.updated_replicas, s.ready_replicas),
            (Some(4), Some(2), Some(2))
        );
        assert_eq!(
            (s.available_replicas, s.unavailable_replicas),
            (Some(2), Some(2))
        );
        assert_eq!(s.conditions[1].type_, "Progressing");
        assert_eq!(
            s.conditions[1].last_update_time.as_deref(),
            Some("2026-11-27T02:20:19Z")
        );
        assert_eq!(s.collision_count, Some(1));
        assert!(s.extra.contains_key("terminatingReplicas"));
    }

    #[test]
    fn a_replica_set_round_trips() {
        let raw = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "annotations": {"deployment.kubernetes.io/desired-replicas": "3"},
                "generation": 2,
                "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"},
                "name": "web-7d9f8b6c5d", "namespace": "default",
                "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": true,
                                     "controller": true, "kind": "Deployment", "name": "web",
                                     "uid": "aaaa0000-bbbb-4ccc-8ddd-eeeeffff0000"}],
                "uid": "3f1c2a9e-5b7d-4c1e-9a2f-8e6d4b3c2a10"
            },
            "spec": {
                "minReadySeconds": 5,
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"}},
                "template": template()
            },
            "status": {
                "availableReplicas": 2,
                "conditions": [{"lastTransitionTime": "2026-11-27T02:21:00Z",
                                "message": "pods \"web-x\" is forbidden: exceeded quota",
                                "reason": "FailedCreate", "status": "True",
                                "type": "ReplicaFailure"}],
                "fullyLabeledReplicas": 3,
                "observedGeneration": 2,
                "readyReplicas": 2,
                "replicas": 3
            }
        });
        let expected = without_template_null(&raw);
        let rs: ReplicaSet = round_trip(raw, &expected);
        assert_eq!(rs.spec.replicas, Some(3));
        assert_eq!(rs.spec.min_ready_seconds, Some(5));
        assert_eq!(rs.spec.selector.match_labels.len(), 2);
        assert_eq!(rs.status.replicas, 3);
        assert_eq!(rs.status.fully_labeled_replicas, Some(3));
        assert_eq!(rs.status.ready_replicas, Some(2));
        assert_eq!(rs.status.available_replicas, Some(2));
        assert_eq!(rs.status.observed_generation, Some(2));
        assert_eq!(rs.status.conditions[0]["reason"], "FailedCreate");
        assert_eq!(owner_references(&rs.metadata)[0].kind, "Deployment");

        // A scaled-down set reports `replicas: 0`; it is written back, not dropped.
        let scaled: ReplicaSetStatus =
            serde_json::from_value(json!({"observedGeneration": 3, "replicas": 0})).unwrap();
        assert_eq!(
            serde_json::to_value(&scaled).unwrap(),
            json!({"observedGeneration": 3, "replicas": 0})
        );
    }

    #[test]
    fn a_daemon_set_round_trips() {
        let raw = json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"annotations": {"deprecated.daemonset.template.generation": "1"},
                         "generation": 1, "name": "node-agent", "namespace": "kube-system",
                         "uid": "dddd1111-2222-4333-8444-555566667777"},
            "spec": {
                "minReadySeconds": 0,
                "revisionHistoryLimit": 10,
                "selector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["node-agent"]}]},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "node-agent"}},
                    "spec": {
                        "containers": [{"image": "agent:2", "name": "agent", "resources": {}}],
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "node-agent",
                        "tolerations": [{"operator": "Exists"}]
                    }
                },
                "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                                   "type": "RollingUpdate"}
            },
            "status": {
                "currentNumberScheduled": 3,
                "desiredNumberScheduled": 3,
                "numberAvailable": 2,
                "numberMisscheduled": 0,
                "numberReady": 2,
                "numberUnavailable": 1,
                "observedGeneration": 1,
                "updatedNumberScheduled": 3
            }
        });
        let expected = without_template_null(&raw);
        let ds: DaemonSet = round_trip(raw, &expected);
        assert_eq!(ds.spec.selector.match_expressions[0].values, ["node-agent"]);
        assert_eq!(ds.spec.min_ready_seconds, Some(0));
        assert_eq!(ds.spec.revision_history_limit, Some(10));
        let pod_spec = &ds.spec.template.spec;
        assert_eq!(pod_spec.host_network, Some(true));
        assert_eq!(pod_spec.priority_class_name, "system-node-critical");
        assert_eq!(pod_spec.service_account_name, "node-agent");
        assert_eq!(pod_spec.tolerations[0].operator, "Exists");
        let strategy = ds.spec.update_strategy.as_ref().unwrap();
        let rolling = strategy.rolling_update.as_ref().unwrap();
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(0)));
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(1)));
        let s = &ds.status;
        assert_eq!((s.current_number_scheduled, s.number_misscheduled), (3, 0));
        assert_eq!((s.desired_number_scheduled, s.number_ready), (3, 2));
        assert_eq!(s.updated_number_scheduled, Some(3));
        assert_eq!(
            (s.number_available, s.number_unavailable),
            (Some(2), Some(1))
        );
        assert!(ds
            .spec
            .selector
            .matches(&[("app".to_string(), "node-agent".to_string())].into()));
    }
}
