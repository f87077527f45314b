//! Typed `discovery.k8s.io/v1` EndpointSlice, what the endpoint-slice controller writes and
//! service proxies read. Serialization follows the conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::core::ObjectReference;
use super::kind::null_as_default;
use super::ObjectMeta;
use crate::kind;

/// A slice of a service's endpoints. Unlike most objects it has no `spec`: its fields sit at
/// the top level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address_type: String,
    /// Go writes `"endpoints": null` for an empty slice; it reads as empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<Endpoint>,
    /// Go writes `"ports": null` for a service without ports; it reads as empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<EndpointSlicePort>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    EndpointSlice,
    "discovery.k8s.io",
    "v1",
    "EndpointSlice",
    "endpointslices",
    true
);

/// One backend (usually a pod) and its addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
    /// Always written, as upstream does (`{}` when no condition is known).
    #[serde(default)]
    pub conditions: EndpointConditions,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zone: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `None` means unknown; consumers treat an unknown `ready` as ready.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlicePort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `None` means all ports (only with an empty name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    #[test]
    fn an_endpoint_slice_round_trips() {
        let raw = json!({
            "addressType": "IPv4",
            "apiVersion": "discovery.k8s.io/v1",
            "endpoints": [
                {"addresses": ["10.244.2.17"],
                 "conditions": {"ready": true, "serving": true, "terminating": false},
                 "nodeName": "worker-2",
                 "targetRef": {"kind": "Pod", "name": "web-7d9f8b6c5d-x2k4q",
                               "namespace": "default",
                               "uid": "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d"},
                 "zone": "zone-b"},
                {"addresses": ["10.244.1.9"], "conditions": {"ready": false},
                 "hints": {"forZones": [{"name": "zone-a"}]},
                 "hostname": "web-1", "nodeName": "worker-1"},
                {"addresses": ["10.244.3.4"], "conditions": {}}
            ],
            "kind": "EndpointSlice",
            "metadata": {
                "generateName": "web-", "generation": 7,
                "labels": {"endpointslice.kubernetes.io/managed-by":
                               "endpointslice-controller.k8s.io",
                           "kubernetes.io/service-name": "web"},
                "name": "web-8xk2p", "namespace": "default",
                "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": true,
                                     "controller": true, "kind": "Service", "name": "web",
                                     "uid": "51515151-aaaa-4bbb-8ccc-dddddddddddd"}]
            },
            "ports": [{"appProtocol": "http", "name": "http", "port": 8080, "protocol": "TCP"}]
        });
        let slice: EndpointSlice = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&slice).unwrap(), raw);
        assert_eq!(slice.address_type, "IPv4");
        let e = &slice.endpoints[0];
        assert_eq!(e.addresses, ["10.244.2.17"]);
        assert_eq!(e.conditions.ready, Some(true));
        assert_eq!(e.conditions.terminating, Some(false));
        assert_eq!(e.node_name, "worker-2");
        assert_eq!(e.zone, "zone-b");
        assert_eq!(e.target_ref.as_ref().unwrap().name, "web-7d9f8b6c5d-x2k4q");
        let not_ready = &slice.endpoints[1];
        assert_eq!(not_ready.conditions.ready, Some(false));
        assert_eq!(not_ready.conditions.serving, None);
        assert_eq!(not_ready.hostname, "web-1");
        assert!(not_ready.extra.contains_key("hints"));
        assert_eq!(slice.endpoints[2].conditions, EndpointConditions::default());
        assert_eq!(slice.ports[0].port, Some(8080));
        assert_eq!(slice.ports[0].name, "http");
    }

    #[test]
    fn null_endpoints_and_ports_read_as_empty() {
        // What the controller writes for a service with no ready pods and no ports.
        let slice: EndpointSlice = serde_json::from_value(json!({
            "addressType": "IPv4", "endpoints": null, "ports": null,
            "metadata": {"name": "headless-abcde", "namespace": "default"}
        }))
        .unwrap();
        assert!(slice.endpoints.is_empty() && slice.ports.is_empty());
        assert_eq!(
            serde_json::to_value(&slice).unwrap(),
            json!({"addressType": "IPv4",
                   "metadata": {"name": "headless-abcde", "namespace": "default"}})
        );
    }

    #[test]
    fn defaults_are_minimal_and_kind_is_set() {
        assert_eq!(
            serde_json::to_value(EndpointSlice::default()).unwrap(),
            json!({"metadata": {}})
        );
        assert_eq!(
            to_json(&EndpointSlice::default()),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {}})
        );
        assert_eq!(EndpointSlice::PLURAL, "endpointslices");
    }
}
