//! Typed `coordination.k8s.io/v1` Lease, the object leader election and node heartbeats
//! write. Serialization follows the conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::is_default;
use super::ObjectMeta;
use crate::kind;

/// A lease: who holds it, for how long, and when it was last renewed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: LeaseSpec,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(Lease, "coordination.k8s.io", "v1", "Lease", "leases", true);

/// Every field is optional upstream: an empty `holderIdentity` (or none) means the lease is
/// free. Times are MicroTime text (`2026-11-27T02:24:45.123456Z`, see
/// `time::rfc3339_micros`), kept as strings so they round-trip exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    /// How many times the lease changed hands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_transitions: Option<i32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    #[test]
    fn a_leader_election_lease_round_trips() {
        let raw = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"creationTimestamp": "2026-11-26T23:07:10Z",
                         "name": "kube-scheduler", "namespace": "kube-system",
                         "resourceVersion": "50123",
                         "uid": "1ea5e000-0000-4000-8000-00000000beef"},
            "spec": {"acquireTime": "2026-11-26T23:07:10.000042Z",
                     "holderIdentity": "control-1_5b3c8f0e-4a7d-4f2e-9c1b-2d3e4f5a6b7c",
                     "leaseDurationSeconds": 15, "leaseTransitions": 2,
                     "renewTime": "2026-11-27T02:24:45.123456Z",
                     "preferredHolder": "control-2", "strategy": "OldestEmulationVersion"}
        });
        let lease: Lease = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&lease).unwrap(), raw);
        let s = &lease.spec;
        assert_eq!(
            s.holder_identity.as_deref(),
            Some("control-1_5b3c8f0e-4a7d-4f2e-9c1b-2d3e4f5a6b7c")
        );
        assert_eq!(s.lease_duration_seconds, Some(15));
        assert_eq!(s.lease_transitions, Some(2));
        assert_eq!(s.renew_time.as_deref(), Some("2026-11-27T02:24:45.123456Z"));
        assert_eq!(
            s.acquire_time.as_deref(),
            Some("2026-11-26T23:07:10.000042Z")
        );
        assert_eq!(s.extra.len(), 2);
    }

    #[test]
    fn a_free_lease_is_minimal() {
        assert_eq!(
            serde_json::to_value(Lease::default()).unwrap(),
            json!({"metadata": {}})
        );
        // An explicitly empty holder is kept: it is how a leader steps down.
        let mut lease = Lease::default();
        lease.metadata.name = "ctl".into();
        lease.spec.holder_identity = Some(String::new());
        assert_eq!(
            to_json(&lease),
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "ctl"}, "spec": {"holderIdentity": ""}})
        );
        assert_eq!((Lease::PLURAL, Lease::NAMESPACED), ("leases", true));
    }
}
