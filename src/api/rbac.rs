//! Typed `rbac.authorization.k8s.io/v1` objects (Role, ClusterRole and their bindings), read
//! by the authorizer and written by bootstrap and controllers. Serialization follows the
//! conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::{is_default, null_as_default};
use super::ObjectMeta;
use crate::kind;

/// A namespaced set of permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Go writes `"rules": null` for a role without rules; it reads as empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<PolicyRule>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    Role,
    "rbac.authorization.k8s.io",
    "v1",
    "Role",
    "roles",
    true
);

/// A cluster-wide set of permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRole {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// For an aggregated role, filled in by the aggregation controller (and `null` before).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<PolicyRule>,
    /// Kept as JSON: label selectors picking the roles whose rules this one collects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_rule: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    ClusterRole,
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRole",
    "clusterroles",
    false
);

/// One permission: `verbs` on `resources` in `apiGroups` (optionally only `resourceNames`),
/// or `verbs` on `nonResourceURLs`. `"*"` is a wildcard in every list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verbs: Vec<String>,
    /// `""` is the core group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        rename = "nonResourceURLs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Grants a Role or ClusterRole's permissions within one namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Subject>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub role_ref: RoleRef,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    RoleBinding,
    "rbac.authorization.k8s.io",
    "v1",
    "RoleBinding",
    "rolebindings",
    true
);

/// Grants a ClusterRole's permissions cluster-wide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRoleBinding {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Subject>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub role_ref: RoleRef,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    ClusterRoleBinding,
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRoleBinding",
    "clusterrolebindings",
    false
);

/// Who a binding grants to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `rbac.authorization.k8s.io` for users and groups; empty for service accounts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Only for service accounts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The role a binding grants (immutable once the binding exists).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// `Role` or `ClusterRole`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    fn round_trip<K: Kind + std::fmt::Debug + PartialEq>(raw: &Value) -> K {
        let typed: K = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&typed).unwrap(), raw);
        typed
    }

    #[test]
    fn roles_round_trip() {
        let role: Role = round_trip(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": "default",
                         "resourceVersion": "311"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "pods/log"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resourceNames": ["web-config"],
                 "resources": ["configmaps"], "verbs": ["get"]}
            ]
        }));
        assert_eq!(role.rules[0].api_groups, [""]);
        assert_eq!(role.rules[0].verbs, ["get", "list", "watch"]);
        assert_eq!(role.rules[1].resource_names, ["web-config"]);

        let admin: ClusterRole = round_trip(&json!({
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {
                "rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]},
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                         "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "name": "admin"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                 "verbs": ["*"]},
                {"nonResourceURLs": ["/healthz", "/version"], "verbs": ["get"]}
            ]
        }));
        assert!(admin.aggregation_rule.is_some());
        assert_eq!(admin.rules[1].non_resource_urls, ["/healthz", "/version"]);
        assert!(admin.rules[1].resources.is_empty());

        let fresh: ClusterRole = serde_json::from_value(json!({
            "aggregationRule": {"clusterRoleSelectors": []},
            "metadata": {"name": "view"}, "rules": null
        }))
        .unwrap();
        assert!(fresh.rules.is_empty(), "Go's null rules read as none");
    }

    #[test]
    fn bindings_round_trip() {
        let rb: RoleBinding = round_trip(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read-pods", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "pod-reader"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"},
                {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}
            ]
        }));
        assert_eq!(rb.role_ref.kind, "Role");
        assert_eq!(rb.role_ref.name, "pod-reader");
        assert_eq!(rb.subjects[0].api_group, "rbac.authorization.k8s.io");
        assert_eq!(rb.subjects[1].namespace, "ci");

        let crb: ClusterRoleBinding = round_trip(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": "system:masters"}]
        }));
        assert_eq!(crb.subjects[0].name, "system:masters");
        assert_eq!(crb.role_ref.kind, "ClusterRole");
    }

    #[test]
    fn defaults_are_minimal_and_scopes_are_right() {
        for v in [
            serde_json::to_value(Role::default()).unwrap(),
            serde_json::to_value(ClusterRole::default()).unwrap(),
            serde_json::to_value(RoleBinding::default()).unwrap(),
            serde_json::to_value(ClusterRoleBinding::default()).unwrap(),
        ] {
            assert_eq!(v, json!({"metadata": {}}));
        }
        let scopes = [
            Role::NAMESPACED,
            RoleBinding::NAMESPACED,
            ClusterRole::NAMESPACED,
            ClusterRoleBinding::NAMESPACED,
        ];
        assert_eq!(scopes, [true, true, false, false]);
        assert_eq!(ClusterRoleBinding::PLURAL, "clusterrolebindings");
        assert_eq!(
            to_json(&ClusterRole::default())["apiVersion"],
            "rbac.authorization.k8s.io/v1"
        );
        assert_eq!(to_json(&RoleBinding::default())["kind"], "RoleBinding");
    }
}
