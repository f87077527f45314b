//! Typed `scheduling.k8s.io/v1` PriorityClass, the object that maps a class name to the
//! integer priority pods of that class get, and upstream's constants around it (the highest
//! value a user may give, the two system classes every cluster has). They live here, not in
//! the API server, because the scheduler and clients reason about the same numbers.
//! Serialization follows the conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::null_as_default;
use super::ObjectMeta;
use crate::kind;

/// The highest `value` a class not named `system-…` may have (upstream's
/// `HighestUserDefinablePriority`); higher values are reserved for the system classes.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The value of `system-cluster-critical` (upstream's `SystemCriticalPriority`).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// How far `system-node-critical` sits above `system-cluster-critical` (upstream: 1000).
pub const NODE_CRITICAL_OFFSET: i32 = 1000;
/// Class names with this prefix are reserved for the system classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
/// For pods that must run in the cluster but may move to another node.
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
/// For pods that must not leave their node.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
/// The priority of a pod with no class when no class is the global default (upstream's
/// `DefaultPriorityWhenNoDefaultClassExists`).
pub const DEFAULT_PRIORITY: i32 = 0;
/// The default preemption policy: the scheduler may evict lower-priority pods.
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
/// A class whose pods wait for room instead of evicting others.
pub const PREEMPT_NEVER: &str = "Never";

/// A priority class. `value` has no `omitempty` in Go, so it is always written (an absent
/// or `null` value reads as 0, as Go's decoder leaves it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriorityClass {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: i32,
    /// The class of pods that name none; when several claim it, the lowest value wins.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub global_default: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// [`PREEMPT_LOWER_PRIORITY`] (the API server's default) or [`PREEMPT_NEVER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    PriorityClass,
    "scheduling.k8s.io",
    "v1",
    "PriorityClass",
    "priorityclasses",
    false
);

/// The system classes every cluster has from the start, with upstream's values and
/// descriptions (upstream's `SystemPriorityClasses`), in upstream's order.
pub fn system_priority_classes() -> Vec<PriorityClass> {
    let class = |name: &str, value: i32, description: &str| {
        let mut pc = PriorityClass {
            value,
            description: description.into(),
            ..Default::default()
        };
        pc.metadata.name = name.into();
        pc
    };
    vec![
        class(
            SYSTEM_NODE_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY + NODE_CRITICAL_OFFSET,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        class(
            SYSTEM_CLUSTER_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    #[test]
    fn a_priority_class_round_trips() {
        let raw = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "high", "resourceVersion": "12"},
            "value": 1000, "globalDefault": true, "description": "batch jobs first",
            "preemptionPolicy": "Never"
        });
        let pc: PriorityClass = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&pc).unwrap(), raw);
        assert_eq!((pc.value, pc.global_default), (1000, true));
        assert_eq!(pc.preemption_policy.as_deref(), Some(PREEMPT_NEVER));
        assert_eq!(
            (PriorityClass::PLURAL, PriorityClass::NAMESPACED),
            ("priorityclasses", false)
        );
    }

    #[test]
    fn value_is_always_written_and_null_reads_as_zero() {
        let pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": "z"}, "value": null})).unwrap();
        assert_eq!(pc.value, 0);
        assert_eq!(
            to_json(&pc),
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                   "metadata": {"name": "z"}, "value": 0})
        );
        let too_big = json!({"metadata": {"name": "z"}, "value": 3_000_000_000_i64});
        assert!(serde_json::from_value::<PriorityClass>(too_big).is_err());
    }

    #[test]
    fn the_system_classes_are_upstreams() {
        let classes = system_priority_classes();
        let named: Vec<(&str, i32)> = classes
            .iter()
            .map(|c| (c.metadata.name.as_str(), c.value))
            .collect();
        assert_eq!(
            named,
            [
                ("system-node-critical", 2_000_001_000),
                ("system-cluster-critical", 2_000_000_000)
            ]
        );
        assert!(classes.iter().all(
            |c| !c.global_default && c.metadata.name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX)
        ));
    }
}
