//! Typed `authorization.k8s.io/v1` SelfSubjectAccessReview: "may I do this?", asked by
//! `kubectl auth can-i` and answered by the authorizer. Serialization follows the
//! conventions in `api::kind`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::is_default;
use super::ObjectMeta;
use crate::kind;

/// A question about the caller's own access. Never stored: the API server answers it by
/// filling in `status` and returning it. Cluster-scoped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectAccessReview {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub spec: SelfSubjectAccessReviewSpec,
    /// `None` in the request, `Some` in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubjectAccessReviewStatus>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
kind!(
    SelfSubjectAccessReview,
    "authorization.k8s.io",
    "v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    false
);

/// Exactly one of the two attribute sets is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectAccessReviewSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<ResourceAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_resource_attributes: Option<NonResourceAttributes>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A request on a resource; empty fields mean "all" (`namespace`: all namespaces).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A request on a URL path outside the resource tree (`/healthz`, `/version`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAccessReviewStatus {
    /// Required upstream, so always written (`false` is an answer).
    #[serde(default)]
    pub allowed: bool,
    /// An explicit deny; `allowed: false` alone only means no authorizer allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evaluation_error: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{to_json, Kind};
    use serde_json::json;

    #[test]
    fn a_resource_review_and_its_answer_round_trip() {
        let raw = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {
                "fieldSelector": {"requirements": [{"key": "spec.nodeName",
                                                    "operator": "In", "values": ["w-1"]}]},
                "group": "apps", "name": "web", "namespace": "default",
                "resource": "deployments", "subresource": "scale", "verb": "update",
                "version": "v1"}},
            "status": {"allowed": true,
                       "reason": "RBAC: allowed by RoleBinding \"deployers/default\""}
        });
        let mut expected = raw.clone();
        expected["metadata"] = json!({});
        let review: SelfSubjectAccessReview = serde_json::from_value(raw).unwrap();
        assert_eq!(serde_json::to_value(&review).unwrap(), expected);
        let attrs = review.spec.resource_attributes.as_ref().unwrap();
        assert_eq!(
            (
                attrs.group.as_str(),
                attrs.resource.as_str(),
                attrs.subresource.as_str()
            ),
            ("apps", "deployments", "scale")
        );
        assert_eq!(
            (attrs.verb.as_str(), attrs.name.as_str()),
            ("update", "web")
        );
        assert_eq!(
            (attrs.namespace.as_str(), attrs.version.as_str()),
            ("default", "v1")
        );
        assert!(attrs.extra.contains_key("fieldSelector"));
        let status = review.status.as_ref().unwrap();
        assert!(status.allowed);
        assert_eq!(status.denied, None);
        assert!(status.reason.starts_with("RBAC: allowed"));
    }

    #[test]
    fn a_denied_non_resource_review_round_trips() {
        let raw = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
            "status": {"allowed": false, "denied": true,
                       "evaluationError": "webhook timed out"}
        });
        let review: SelfSubjectAccessReview = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&review).unwrap(), raw);
        let nra = review.spec.non_resource_attributes.as_ref().unwrap();
        assert_eq!((nra.path.as_str(), nra.verb.as_str()), ("/metrics", "get"));
        let status = review.status.as_ref().unwrap();
        assert!(!status.allowed);
        assert_eq!(status.denied, Some(true));
        assert_eq!(status.evaluation_error, "webhook timed out");
    }

    #[test]
    fn a_request_is_minimal_and_names_its_kind() {
        assert_eq!(
            serde_json::to_value(SelfSubjectAccessReview::default()).unwrap(),
            json!({"metadata": {}})
        );
        let ask = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: "list".into(),
                    resource: "pods".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            to_json(&ask),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "metadata": {}, "spec": {"resourceAttributes": {"resource": "pods",
                                                                    "verb": "list"}}})
        );
        // An answer that denies keeps `allowed: false`.
        let answer = SubjectAccessReviewStatus::default();
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            json!({"allowed": false})
        );
        assert_eq!(
            (
                SelfSubjectAccessReview::PLURAL,
                SelfSubjectAccessReview::NAMESPACED
            ),
            ("selfsubjectaccessreviews", false)
        );
    }
}
