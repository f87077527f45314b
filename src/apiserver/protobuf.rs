//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), read into the
//! JSON value the same object sent as JSON would give.
//!
//! Why: kubectl's generator commands (`create namespace|configmap|secret generic|deployment|
//! service clusterip|serviceaccount|role|clusterrole|rolebinding|clusterrolebinding|
//! priorityclass`, the TokenRequest behind `create token` and the SelfSubjectAccessReview
//! behind `auth can-i`) send protobuf and never fall back to JSON on a 415. The API server stores and serves JSON,
//! so this module is a decoder only: responses stay JSON, which kubectl accepts.
//!
//! What it owns: the envelope (`k8s\0` then a `runtime.Unknown` naming the object's
//! apiVersion and kind), the kinds accepted ([`ACCEPTED`]), the schema subset in
//! `proto/kubernetes.proto`, and the mapping onto Kubernetes' JSON (camelCase names, Time as
//! RFC 3339, IntOrString as a bare number or string, bytes as base64). Go's encoder writes
//! every plain (non-pointer) field, empty or not, and pointer fields only when set; the
//! mapping follows the Go types' JSON tags, so an empty plain string or a zero plain number
//! is left out (`omitempty`), a pointer field is kept whenever sent (an explicit
//! `replicas: 0`), and empty lists and maps are left out. Fields not modelled are skipped.
//!
//! The input is untrusted: every failure is an `Err` naming the cause, never a panic.

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{json, Map, Value};

use crate::api::time::rfc3339;

/// The media type of Kubernetes' protobuf encoding.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// The (apiVersion, kind) pairs accepted, in the order error messages list them.
pub const ACCEPTED: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
];

/// The API group of Role, ClusterRole, RoleBinding and ClusterRoleBinding.
const RBAC_V1: &str = "rbac.authorization.k8s.io/v1";

/// First and last second of years 1..=9999, the range an RFC 3339 timestamp can carry.
const TIME_RANGE_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Generated from `src/apiserver/proto/kubernetes.proto` by `build.rs`.
#[allow(clippy::all, missing_docs)]
mod pb {
    tonic::include_proto!("k8spb");
}

/// Decodes one protobuf body into the JSON object it stands for, with `apiVersion` and
/// `kind` set. Errors name the cause (bad prefix, undecodable envelope or object, a kind
/// not accepted, a value with no JSON form).
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or("it does not start with the 4-byte prefix \"k8s\\0\"")?;
    let unknown = pb::Unknown::decode(body)
        .map_err(|e| format!("cannot decode the runtime.Unknown envelope: {e}"))?;
    if !unknown.content_encoding().is_empty() {
        return Err(format!(
            "content encoding {:?} is not supported",
            unknown.content_encoding()
        ));
    }
    let content_type = unknown.content_type();
    if !content_type.is_empty() && content_type != PROTOBUF_MEDIA_TYPE {
        return Err(format!(
            "the envelope's content type {content_type:?} is not {PROTOBUF_MEDIA_TYPE}"
        ));
    }
    let type_meta = unknown.type_meta.clone().unwrap_or_default();
    let (api_version, kind) = (type_meta.api_version(), type_meta.kind());
    let raw = unknown.raw();
    let mut obj = match (api_version, kind) {
        ("v1", "Namespace") => namespace(&message(raw, kind)?)?,
        ("v1", "ConfigMap") => config_map(&message(raw, kind)?)?,
        ("v1", "Secret") => secret(&message(raw, kind)?)?,
        ("v1", "Service") => service(&message(raw, kind)?)?,
        ("v1", "ServiceAccount") => service_account(&message(raw, kind)?)?,
        ("apps/v1", "Deployment") => deployment(&message(raw, kind)?)?,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            self_subject_access_review(&message(raw, kind)?)?
        }
        ("authentication.k8s.io/v1", "TokenRequest") => token_request(&message(raw, kind)?)?,
        (RBAC_V1, "Role") => {
            let r: pb::Role = message(raw, kind)?;
            role(&r.metadata, &r.rules)?
        }
        (RBAC_V1, "ClusterRole") => {
            let r: pb::ClusterRole = message(raw, kind)?;
            role(&r.metadata, &r.rules)?
        }
        (RBAC_V1, "RoleBinding") => {
            let b: pb::RoleBinding = message(raw, kind)?;
            binding(&b.metadata, &b.subjects, &b.role_ref)?
        }
        (RBAC_V1, "ClusterRoleBinding") => {
            let b: pb::ClusterRoleBinding = message(raw, kind)?;
            binding(&b.metadata, &b.subjects, &b.role_ref)?
        }
        ("scheduling.k8s.io/v1", "PriorityClass") => priority_class(&message(raw, kind)?)?,
        _ => {
            let accepted: Vec<String> =
                ACCEPTED.iter().map(|(v, k)| format!("{k} ({v})")).collect();
            return Err(format!(
                "kind {kind:?} of apiVersion {api_version:?} is not accepted as protobuf; \
                 accepted kinds: {} (send other objects as JSON)",
                accepted.join(", ")
            ));
        }
    };
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

fn message<M: Message + Default>(raw: &[u8], kind: &str) -> Result<M, String> {
    M::decode(raw).map_err(|e| format!("cannot decode the {kind} inside the envelope: {e}"))
}

/// Builds one JSON object field by field, each method applying one of Go's JSON rules.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    /// A plain Go string tagged `omitempty`: left out when empty.
    fn text(mut self, key: &str, v: &Option<String>) -> Self {
        if let Some(s) = v.as_ref().filter(|s| !s.is_empty()) {
            self.0.insert(key.into(), json!(s));
        }
        self
    }

    /// A Go pointer field, or a plain one without `omitempty`: kept whenever sent.
    fn opt<T: Into<Value>>(mut self, key: &str, v: Option<T>) -> Self {
        if let Some(v) = v {
            self.0.insert(key.into(), v.into());
        }
        self
    }

    /// A plain Go number or bool tagged `omitempty`: left out when zero or false.
    fn nonzero<T: Into<Value> + Default + PartialEq>(mut self, key: &str, v: Option<T>) -> Self {
        if let Some(v) = v.filter(|v| *v != T::default()) {
            self.0.insert(key.into(), v.into());
        }
        self
    }

    /// A nested object or value, when there is one.
    fn value(mut self, key: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(key.into(), v);
        }
        self
    }

    /// A list, left out when empty.
    fn list(mut self, key: &str, items: Vec<Value>) -> Self {
        if !items.is_empty() {
            self.0.insert(key.into(), Value::Array(items));
        }
        self
    }

    fn strings(self, key: &str, items: &[String]) -> Self {
        self.list(key, items.iter().map(|s| json!(s)).collect())
    }

    /// A map, left out when empty.
    fn map<V>(mut self, key: &str, m: &BTreeMap<String, V>, f: impl Fn(&V) -> Value) -> Self {
        if !m.is_empty() {
            let m = m.iter().map(|(k, v)| (k.clone(), f(v))).collect();
            self.0.insert(key.into(), Value::Object(m));
        }
        self
    }

    fn string_map(self, key: &str, m: &BTreeMap<String, String>) -> Self {
        self.map(key, m, |v| json!(v))
    }

    /// Bytes values, base64-encoded as in Kubernetes' JSON.
    fn bytes_map(self, key: &str, m: &BTreeMap<String, Vec<u8>>) -> Self {
        self.map(key, m, |v| json!(base64(v)))
    }

    fn done(self) -> Map<String, Value> {
        self.0
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// Applies `f` to a nested message when it was sent (an empty one still gives `{}`).
fn nested<M>(
    m: &Option<M>,
    f: impl Fn(&M) -> Result<Value, String>,
) -> Result<Option<Value>, String> {
    m.as_ref().map(f).transpose()
}

fn object_meta(m: &pb::ObjectMeta) -> Result<Value, String> {
    Ok(Obj::default()
        .text("name", &m.name)
        .text("generateName", &m.generate_name)
        .text("namespace", &m.namespace)
        .text("uid", &m.uid)
        .text("resourceVersion", &m.resource_version)
        .nonzero("generation", m.generation)
        .value("creationTimestamp", time(&m.creation_timestamp)?)
        .value("deletionTimestamp", time(&m.deletion_timestamp)?)
        .opt(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds,
        )
        .string_map("labels", &m.labels)
        .string_map("annotations", &m.annotations)
        .strings("finalizers", &m.finalizers)
        .into_value())
}

/// A zero Time is `null`, as Go writes it (e.g. kubectl's `creationTimestamp: null`).
fn time(t: &Option<pb::Time>) -> Result<Option<Value>, String> {
    let Some(t) = t else { return Ok(None) };
    let seconds = t.seconds();
    if seconds == 0 && t.nanos() == 0 {
        return Ok(Some(Value::Null));
    }
    if !TIME_RANGE_SECONDS.contains(&seconds) {
        return Err(format!(
            "timestamp {seconds}s since the epoch is outside years 1-9999"
        ));
    }
    Ok(Some(json!(rfc3339(seconds * 1000))))
}

fn int_or_string(v: &pb::IntOrString) -> Result<Value, String> {
    match v.r#type() {
        0 => Ok(json!(v.int_val())),
        1 => Ok(json!(v.str_val())),
        t => Err(format!(
            "IntOrString type {t} is neither 0 (integer) nor 1 (string)"
        )),
    }
}

fn namespace(n: &pb::Namespace) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&n.metadata, object_meta)?)
        .value(
            "spec",
            nested(&n.spec, |s| {
                Ok(Obj::default()
                    .strings("finalizers", &s.finalizers)
                    .into_value())
            })?,
        )
        .done())
}

fn config_map(c: &pb::ConfigMap) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&c.metadata, object_meta)?)
        .string_map("data", &c.data)
        .bytes_map("binaryData", &c.binary_data)
        .opt("immutable", c.immutable)
        .done())
}

fn secret(s: &pb::Secret) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&s.metadata, object_meta)?)
        .bytes_map("data", &s.data)
        .text("type", &s.r#type)
        .string_map("stringData", &s.string_data)
        .opt("immutable", s.immutable)
        .done())
}

fn service(s: &pb::Service) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&s.metadata, object_meta)?)
        .value("spec", nested(&s.spec, service_spec)?)
        .done())
}

fn service_spec(s: &pb::ServiceSpec) -> Result<Value, String> {
    let ports = s.ports.iter().map(service_port).collect::<Result<_, _>>()?;
    Ok(Obj::default()
        .list("ports", ports)
        .string_map("selector", &s.selector)
        .text("clusterIP", &s.cluster_ip)
        .text("type", &s.r#type)
        .text("sessionAffinity", &s.session_affinity)
        .into_value())
}

fn service_port(p: &pb::ServicePort) -> Result<Value, String> {
    // A plain IntOrString in Go: an unset one (0 or "") is left out, and defaulting then
    // sets it to `port`, as upstream's defaulting does for 0.
    let target =
        nested(&p.target_port, int_or_string)?.filter(|t| *t != json!(0) && *t != json!(""));
    Ok(Obj::default()
        .text("name", &p.name)
        .text("protocol", &p.protocol)
        .opt("port", p.port)
        .value("targetPort", target)
        .nonzero("nodePort", p.node_port)
        .into_value())
}

fn deployment(d: &pb::Deployment) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&d.metadata, object_meta)?)
        .value("spec", nested(&d.spec, deployment_spec)?)
        .done())
}

fn deployment_spec(s: &pb::DeploymentSpec) -> Result<Value, String> {
    Ok(Obj::default()
        .opt("replicas", s.replicas)
        .value("selector", nested(&s.selector, label_selector)?)
        .value("template", nested(&s.template, pod_template)?)
        .value("strategy", nested(&s.strategy, strategy)?)
        .nonzero("minReadySeconds", s.min_ready_seconds)
        .opt("revisionHistoryLimit", s.revision_history_limit)
        .nonzero("paused", s.paused)
        .opt("progressDeadlineSeconds", s.progress_deadline_seconds)
        .into_value())
}

fn label_selector(s: &pb::LabelSelector) -> Result<Value, String> {
    let expressions = s
        .match_expressions
        .iter()
        .map(|r| {
            Obj::default()
                .opt("key", r.key.clone())
                .opt("operator", r.operator.clone())
                .strings("values", &r.values)
                .into_value()
        })
        .collect();
    Ok(Obj::default()
        .string_map("matchLabels", &s.match_labels)
        .list("matchExpressions", expressions)
        .into_value())
}

fn strategy(s: &pb::DeploymentStrategy) -> Result<Value, String> {
    let rolling = nested(&s.rolling_update, |r| {
        Ok(Obj::default()
            .value("maxUnavailable", nested(&r.max_unavailable, int_or_string)?)
            .value("maxSurge", nested(&r.max_surge, int_or_string)?)
            .into_value())
    })?;
    Ok(Obj::default()
        .text("type", &s.r#type)
        .value("rollingUpdate", rolling)
        .into_value())
}

fn pod_template(t: &pb::PodTemplateSpec) -> Result<Value, String> {
    Ok(Obj::default()
        .value("metadata", nested(&t.metadata, object_meta)?)
        .value("spec", nested(&t.spec, pod_spec)?)
        .into_value())
}

fn pod_spec(s: &pb::PodSpec) -> Result<Value, String> {
    let containers = s.containers.iter().map(container).collect();
    let security = s.security_context.as_ref().map(|_| json!({}));
    Ok(Obj::default()
        .list("containers", containers)
        .text("restartPolicy", &s.restart_policy)
        .opt(
            "terminationGracePeriodSeconds",
            s.termination_grace_period_seconds,
        )
        .text("dnsPolicy", &s.dns_policy)
        .value("securityContext", security)
        .text("schedulerName", &s.scheduler_name)
        .into_value())
}

fn container(c: &pb::Container) -> Value {
    let ports = c
        .ports
        .iter()
        .map(|p| {
            Obj::default()
                .text("name", &p.name)
                .nonzero("hostPort", p.host_port)
                .opt("containerPort", p.container_port)
                .text("protocol", &p.protocol)
                .into_value()
        })
        .collect();
    let env = c
        .env
        .iter()
        .map(|e| {
            Obj::default()
                .opt("name", e.name.clone())
                .text("value", &e.value)
                .into_value()
        })
        .collect();
    let resources = c.resources.as_ref().map(|r| {
        let quantity = |q: &pb::Quantity| json!(q.string());
        Obj::default()
            .map("limits", &r.limits, quantity)
            .map("requests", &r.requests, quantity)
            .into_value()
    });
    Obj::default()
        .opt("name", c.name.clone())
        .text("image", &c.image)
        .strings("command", &c.command)
        .strings("args", &c.args)
        .list("ports", ports)
        .list("env", env)
        .value("resources", resources)
        .text("imagePullPolicy", &c.image_pull_policy)
        .into_value()
}

fn self_subject_access_review(
    r: &pb::SelfSubjectAccessReview,
) -> Result<Map<String, Value>, String> {
    let spec = nested(&r.spec, |s| {
        let resource = s.resource_attributes.as_ref().map(|a| {
            Obj::default()
                .text("namespace", &a.namespace)
                .text("verb", &a.verb)
                .text("group", &a.group)
                .text("version", &a.version)
                .text("resource", &a.resource)
                .text("subresource", &a.subresource)
                .text("name", &a.name)
                .into_value()
        });
        let non_resource = s.non_resource_attributes.as_ref().map(|a| {
            Obj::default()
                .text("path", &a.path)
                .text("verb", &a.verb)
                .into_value()
        });
        Ok(Obj::default()
            .value("resourceAttributes", resource)
            .value("nonResourceAttributes", non_resource)
            .into_value())
    })?;
    Ok(Obj::default()
        .value("metadata", nested(&r.metadata, object_meta)?)
        .value("spec", spec)
        .done())
}

fn service_account(a: &pb::ServiceAccount) -> Result<Map<String, Value>, String> {
    let secrets = a.secrets.iter().map(object_reference).collect();
    Ok(Obj::default()
        .value("metadata", nested(&a.metadata, object_meta)?)
        .list("secrets", secrets)
        .opt(
            "automountServiceAccountToken",
            a.automount_service_account_token,
        )
        .done())
}

fn object_reference(r: &pb::ObjectReference) -> Value {
    Obj::default()
        .text("kind", &r.kind)
        .text("namespace", &r.namespace)
        .text("name", &r.name)
        .text("uid", &r.uid)
        .text("apiVersion", &r.api_version)
        .text("resourceVersion", &r.resource_version)
        .text("fieldPath", &r.field_path)
        .into_value()
}

fn token_request(t: &pb::TokenRequest) -> Result<Map<String, Value>, String> {
    let spec = t.spec.as_ref().map(|s| {
        Obj::default()
            .strings("audiences", &s.audiences)
            .opt("expirationSeconds", s.expiration_seconds)
            .into_value()
    });
    Ok(Obj::default()
        .value("metadata", nested(&t.metadata, object_meta)?)
        .value("spec", spec)
        .done())
}

/// A Role or ClusterRole (the same fields, bar ClusterRole's aggregationRule).
fn role(
    metadata: &Option<pb::ObjectMeta>,
    rules: &[pb::PolicyRule],
) -> Result<Map<String, Value>, String> {
    let rules = rules
        .iter()
        .map(|r| {
            Obj::default()
                .strings("verbs", &r.verbs)
                .strings("apiGroups", &r.api_groups)
                .strings("resources", &r.resources)
                .strings("resourceNames", &r.resource_names)
                .strings("nonResourceURLs", &r.non_resource_ur_ls)
                .into_value()
        })
        .collect();
    Ok(Obj::default()
        .value("metadata", nested(metadata, object_meta)?)
        .list("rules", rules)
        .done())
}

/// A RoleBinding or ClusterRoleBinding (the same fields).
fn binding(
    metadata: &Option<pb::ObjectMeta>,
    subjects: &[pb::Subject],
    role_ref: &Option<pb::RoleRef>,
) -> Result<Map<String, Value>, String> {
    // `kind` and `name` (and all of RoleRef) have no `omitempty` in Go: kept when sent.
    let subjects = subjects
        .iter()
        .map(|s| {
            Obj::default()
                .opt("kind", s.kind.clone())
                .text("apiGroup", &s.api_group)
                .opt("name", s.name.clone())
                .text("namespace", &s.namespace)
                .into_value()
        })
        .collect();
    let role_ref = role_ref.as_ref().map(|r| {
        Obj::default()
            .opt("apiGroup", r.api_group.clone())
            .opt("kind", r.kind.clone())
            .opt("name", r.name.clone())
            .into_value()
    });
    Ok(Obj::default()
        .value("metadata", nested(metadata, object_meta)?)
        .list("subjects", subjects)
        .value("roleRef", role_ref)
        .done())
}

/// A PriorityClass: `value` has no `omitempty` (kept when sent, even 0), `globalDefault`
/// and `description` do, `preemptionPolicy` is a pointer.
fn priority_class(c: &pb::PriorityClass) -> Result<Map<String, Value>, String> {
    Ok(Obj::default()
        .value("metadata", nested(&c.metadata, object_meta)?)
        .opt("value", c.value)
        .nonzero("globalDefault", c.global_default)
        .text("description", &c.description)
        .opt("preemptionPolicy", c.preemption_policy.clone())
        .done())
}

/// Standard base64 with padding (RFC 4648 §4), the JSON form of Kubernetes' `[]byte`.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A body as kubectl sends it: the prefix, then the envelope around `object`.
    fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
        envelope(api_version, kind, object.encode_to_vec())
    }

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = pb::Unknown {
            type_meta: Some(pb::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Metadata as Go writes it: every plain field present, most of them empty.
    fn meta(name: &str, namespace: &str) -> pb::ObjectMeta {
        pb::ObjectMeta {
            name: s(name),
            generate_name: s(""),
            namespace: s(namespace),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(pb::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            ..Default::default()
        }
    }

    fn int(v: i32) -> pb::IntOrString {
        pb::IntOrString {
            r#type: Some(0),
            int_val: Some(v),
            str_val: s(""),
        }
    }

    fn text(v: &str) -> pb::IntOrString {
        pb::IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s(v),
        }
    }

    #[test]
    fn namespace_as_kubectl_sends_it() {
        let ns = pb::Namespace {
            metadata: Some(meta("gen", "")),
            spec: Some(pb::NamespaceSpec::default()),
        };
        assert_eq!(
            decode(&body("v1", "Namespace", &ns)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "gen", "creationTimestamp": null}, "spec": {}})
        );
    }

    #[test]
    fn config_map_and_secret_carry_bytes_as_base64() {
        let cm = pb::ConfigMap {
            metadata: Some(meta("cfg", "gen")),
            data: map(&[("a", "1".to_string())]),
            binary_data: map(&[("bin", vec![0u8, 255, 1])]),
            immutable: Some(false),
        };
        assert_eq!(
            decode(&body("v1", "ConfigMap", &cm)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cfg", "namespace": "gen", "creationTimestamp": null},
                   "data": {"a": "1"}, "binaryData": {"bin": "AP8B"}, "immutable": false})
        );
        let secret = pb::Secret {
            metadata: Some(meta("s", "gen")),
            data: map(&[("p", b"secret".to_vec())]),
            r#type: s("Opaque"),
            string_data: map(&[("q", "plain".to_string())]),
            immutable: None,
        };
        assert_eq!(
            decode(&body("v1", "Secret", &secret)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "namespace": "gen", "creationTimestamp": null},
                   "data": {"p": "c2VjcmV0"}, "stringData": {"q": "plain"}, "type": "Opaque"})
        );
    }

    #[test]
    fn service_ports_and_int_or_string() {
        let port = |name: &str, port: i32, target: pb::IntOrString| pb::ServicePort {
            name: s(name),
            protocol: s("TCP"),
            port: Some(port),
            target_port: Some(target),
            node_port: Some(0),
        };
        let svc = pb::Service {
            metadata: Some(meta("svc", "")),
            spec: Some(pb::ServiceSpec {
                ports: vec![
                    port("80-8080", 80, int(8080)),
                    port("web", 81, text("http")),
                    port("same", 82, int(0)),
                ],
                selector: map(&[("app", "svc".to_string())]),
                cluster_ip: s(""),
                r#type: s("ClusterIP"),
                session_affinity: s(""),
            }),
        };
        assert_eq!(
            decode(&body("v1", "Service", &svc)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "svc", "creationTimestamp": null},
                   "spec": {
                       "ports": [
                           {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                           {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"},
                           {"name": "same", "protocol": "TCP", "port": 82}
                       ],
                       "selector": {"app": "svc"}, "type": "ClusterIP"}})
        );
    }

    #[test]
    fn deployment_with_template_strategy_and_selector() {
        let labels = map(&[("app", "web".to_string())]);
        let container = pb::Container {
            name: s("nginx"),
            image: s("nginx:1.27"),
            command: vec!["nginx".into()],
            args: vec!["-g".into(), "daemon off;".into()],
            ports: vec![pb::ContainerPort {
                name: s(""),
                host_port: Some(0),
                container_port: Some(80),
                protocol: s("TCP"),
            }],
            env: vec![pb::EnvVar {
                name: s("MODE"),
                value: s("fast"),
            }],
            resources: Some(pb::ResourceRequirements {
                limits: map(&[("cpu", pb::Quantity { string: s("500m") })]),
                requests: BTreeMap::new(),
            }),
            image_pull_policy: s(""),
        };
        let deploy = pb::Deployment {
            metadata: Some(pb::ObjectMeta {
                labels: labels.clone(),
                ..meta("web", "gen")
            }),
            spec: Some(pb::DeploymentSpec {
                replicas: Some(2),
                selector: Some(pb::LabelSelector {
                    match_labels: labels.clone(),
                    match_expressions: vec![pb::LabelSelectorRequirement {
                        key: s("tier"),
                        operator: s("In"),
                        values: vec!["front".into()],
                    }],
                }),
                template: Some(pb::PodTemplateSpec {
                    metadata: Some(pb::ObjectMeta {
                        labels: labels.clone(),
                        ..meta("", "")
                    }),
                    spec: Some(pb::PodSpec {
                        containers: vec![container],
                        restart_policy: s("Always"),
                        termination_grace_period_seconds: Some(30),
                        dns_policy: s("ClusterFirst"),
                        security_context: Some(pb::PodSecurityContext {}),
                        scheduler_name: s("default-scheduler"),
                    }),
                }),
                strategy: Some(pb::DeploymentStrategy {
                    r#type: s("RollingUpdate"),
                    rolling_update: Some(pb::RollingUpdateDeployment {
                        max_unavailable: Some(int(0)),
                        max_surge: Some(text("25%")),
                    }),
                }),
                min_ready_seconds: Some(0),
                revision_history_limit: Some(10),
                paused: Some(false),
                progress_deadline_seconds: Some(600),
            }),
        };
        assert_eq!(
            decode(&body("apps/v1", "Deployment", &deploy)).unwrap(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "gen", "creationTimestamp": null,
                                "labels": {"app": "web"}},
                   "spec": {
                       "replicas": 2,
                       "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
                           {"key": "tier", "operator": "In", "values": ["front"]}]},
                       "template": {
                           "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                           "spec": {
                               "containers": [{
                                   "name": "nginx", "image": "nginx:1.27",
                                   "command": ["nginx"], "args": ["-g", "daemon off;"],
                                   "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                   "env": [{"name": "MODE", "value": "fast"}],
                                   "resources": {"limits": {"cpu": "500m"}}}],
                               "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                               "dnsPolicy": "ClusterFirst", "securityContext": {},
                               "schedulerName": "default-scheduler"}},
                       "strategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                       "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}})
        );
    }

    #[test]
    fn pointer_fields_keep_zero_and_plain_fields_drop_it() {
        let deploy = pb::Deployment {
            metadata: Some(meta("zero", "")),
            spec: Some(pb::DeploymentSpec {
                replicas: Some(0),
                strategy: Some(pb::DeploymentStrategy {
                    r#type: s(""),
                    rolling_update: None,
                }),
                ..Default::default()
            }),
        };
        let got = decode(&body("apps/v1", "Deployment", &deploy)).unwrap();
        assert_eq!(got["spec"], json!({"replicas": 0, "strategy": {}}));
        // Nothing sent at all: only apiVersion and kind.
        let got = decode(&body("apps/v1", "Deployment", &pb::Deployment::default())).unwrap();
        assert_eq!(got, json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    }

    #[test]
    fn self_subject_access_reviews() {
        let review = |spec: pb::SelfSubjectAccessReviewSpec| pb::SelfSubjectAccessReview {
            metadata: Some(meta("", "")),
            spec: Some(spec),
        };
        let resource = review(pb::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(pb::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s(""),
                version: s(""),
                resource: s("pods"),
                subresource: s(""),
                name: s(""),
            }),
            non_resource_attributes: None,
        });
        let kind = "SelfSubjectAccessReview";
        let version = "authorization.k8s.io/v1";
        assert_eq!(
            decode(&body(version, kind, &resource)).unwrap(),
            json!({"apiVersion": version, "kind": kind,
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes":
                            {"namespace": "default", "verb": "create", "resource": "pods"}}})
        );
        let path = review(pb::SelfSubjectAccessReviewSpec {
            resource_attributes: None,
            non_resource_attributes: Some(pb::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
        });
        assert_eq!(
            decode(&body(version, kind, &path)).unwrap()["spec"],
            json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
        );
    }

    #[test]
    fn service_account_with_secrets_and_automount() {
        let kind = "ServiceAccount";
        // As `kubectl create serviceaccount` sends it: metadata only.
        let bare = pb::ServiceAccount {
            metadata: Some(meta("robot", "gen")),
            ..Default::default()
        };
        assert_eq!(
            decode(&body("v1", kind, &bare)).unwrap(),
            json!({"apiVersion": "v1", "kind": kind,
                   "metadata": {"name": "robot", "namespace": "gen", "creationTimestamp": null}})
        );
        let full = pb::ServiceAccount {
            metadata: Some(meta("robot", "gen")),
            secrets: vec![
                pb::ObjectReference {
                    name: s("robot-token"),
                    ..Default::default()
                },
                pb::ObjectReference {
                    kind: s("Secret"),
                    namespace: s("gen"),
                    name: s("other"),
                    uid: s("u-1"),
                    api_version: s("v1"),
                    resource_version: s("7"),
                    field_path: s(""),
                },
            ],
            automount_service_account_token: Some(false),
        };
        let got = decode(&body("v1", kind, &full)).unwrap();
        assert_eq!(
            got["secrets"],
            json!([{"name": "robot-token"},
                   {"kind": "Secret", "namespace": "gen", "name": "other", "uid": "u-1",
                    "apiVersion": "v1", "resourceVersion": "7"}])
        );
        // A pointer bool: an explicit false is kept.
        assert_eq!(got["automountServiceAccountToken"], json!(false));
    }

    #[test]
    fn token_requests() {
        let (version, kind) = ("authentication.k8s.io/v1", "TokenRequest");
        let request = |spec: pb::TokenRequestSpec| pb::TokenRequest {
            metadata: Some(meta("", "")),
            spec: Some(spec),
        };
        // `kubectl create token robot`: no duration, no audiences.
        let plain = request(pb::TokenRequestSpec::default());
        assert_eq!(
            decode(&body(version, kind, &plain)).unwrap(),
            json!({"apiVersion": version, "kind": kind,
                   "metadata": {"creationTimestamp": null}, "spec": {}})
        );
        // `--duration=10m --audience=a --audience=b`.
        let timed = request(pb::TokenRequestSpec {
            audiences: vec!["a".into(), "b".into()],
            expiration_seconds: Some(600),
        });
        assert_eq!(
            decode(&body(version, kind, &timed)).unwrap()["spec"],
            json!({"audiences": ["a", "b"], "expirationSeconds": 600})
        );
    }

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> pb::PolicyRule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        pb::PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            ..Default::default()
        }
    }

    #[test]
    fn roles_and_cluster_roles() {
        let role = pb::Role {
            metadata: Some(meta("reader", "gen")),
            rules: vec![pb::PolicyRule {
                resource_names: vec!["x".into()],
                ..rule(&["get", "list"], &[""], &["pods"])
            }],
        };
        assert_eq!(
            decode(&body(RBAC_V1, "Role", &role)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "Role",
                   "metadata": {"name": "reader", "namespace": "gen", "creationTimestamp": null},
                   "rules": [{"verbs": ["get", "list"], "apiGroups": [""],
                              "resources": ["pods"], "resourceNames": ["x"]}]})
        );
        let cluster_role = pb::ClusterRole {
            metadata: Some(meta("logs", "")),
            rules: vec![
                rule(&["get"], &["apps"], &["deployments", "deployments/scale"]),
                pb::PolicyRule {
                    non_resource_ur_ls: vec!["/logs/*".into()],
                    ..rule(&["get"], &[], &[])
                },
            ],
        };
        assert_eq!(
            decode(&body(RBAC_V1, "ClusterRole", &cluster_role)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "ClusterRole",
                   "metadata": {"name": "logs", "creationTimestamp": null},
                   "rules": [
                       {"verbs": ["get"], "apiGroups": ["apps"],
                        "resources": ["deployments", "deployments/scale"]},
                       {"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]})
        );
        // No rules at all: the list is left out.
        let empty = pb::ClusterRole {
            metadata: Some(meta("none", "")),
            rules: vec![],
        };
        let got = decode(&body(RBAC_V1, "ClusterRole", &empty)).unwrap();
        assert_eq!(got.get("rules"), None, "{got}");
    }

    fn subject(kind: &str, group: &str, name: &str, namespace: &str) -> pb::Subject {
        pb::Subject {
            kind: s(kind),
            api_group: s(group),
            name: s(name),
            namespace: s(namespace),
        }
    }

    fn role_ref(kind: &str, name: &str) -> pb::RoleRef {
        pb::RoleRef {
            api_group: s("rbac.authorization.k8s.io"),
            kind: s(kind),
            name: s(name),
        }
    }

    #[test]
    fn role_bindings_and_cluster_role_bindings() {
        let rbac = "rbac.authorization.k8s.io";
        let binding = pb::RoleBinding {
            metadata: Some(meta("view-alice", "gen")),
            subjects: vec![
                subject("User", rbac, "alice", ""),
                subject("Group", rbac, "devs", ""),
                subject("ServiceAccount", "", "robot", "gen"),
            ],
            role_ref: Some(role_ref("ClusterRole", "view")),
        };
        assert_eq!(
            decode(&body(RBAC_V1, "RoleBinding", &binding)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "RoleBinding",
                   "metadata": {"name": "view-alice", "namespace": "gen",
                                "creationTimestamp": null},
                   "subjects": [
                       {"kind": "User", "apiGroup": rbac, "name": "alice"},
                       {"kind": "Group", "apiGroup": rbac, "name": "devs"},
                       {"kind": "ServiceAccount", "name": "robot", "namespace": "gen"}],
                   "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "view"}})
        );
        let cluster = pb::ClusterRoleBinding {
            metadata: Some(meta("admins", "")),
            subjects: vec![subject("User", rbac, "bob", "")],
            role_ref: Some(role_ref("ClusterRole", "cluster-admin")),
        };
        assert_eq!(
            decode(&body(RBAC_V1, "ClusterRoleBinding", &cluster)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
                   "metadata": {"name": "admins", "creationTimestamp": null},
                   "subjects": [{"kind": "User", "apiGroup": rbac, "name": "bob"}],
                   "roleRef": {"apiGroup": rbac, "kind": "ClusterRole",
                               "name": "cluster-admin"}})
        );
        // RoleRef's fields have no `omitempty`: an empty apiGroup, as sent, is kept.
        let core = pb::ClusterRoleBinding {
            metadata: None,
            subjects: vec![],
            role_ref: Some(pb::RoleRef {
                api_group: s(""),
                ..role_ref("ClusterRole", "x")
            }),
        };
        let got = decode(&body(RBAC_V1, "ClusterRoleBinding", &core)).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
                   "roleRef": {"apiGroup": "", "kind": "ClusterRole", "name": "x"}})
        );
        // A binding in another API version is not accepted.
        let err = decode(&body(
            "rbac.authorization.k8s.io/v1beta1",
            "RoleBinding",
            &binding,
        ))
        .unwrap_err();
        assert!(
            err.contains("RoleBinding (rbac.authorization.k8s.io/v1)"),
            "{err}"
        );
    }

    #[test]
    fn times_are_rfc3339_and_bounded() {
        let at = |seconds: i64| pb::Namespace {
            metadata: Some(pb::ObjectMeta {
                deletion_timestamp: Some(pb::Time {
                    seconds: Some(seconds),
                    nanos: Some(5),
                }),
                deletion_grace_period_seconds: Some(0),
                ..Default::default()
            }),
            spec: None,
        };
        let got = decode(&body("v1", "Namespace", &at(1_795_734_427))).unwrap();
        assert_eq!(
            got["metadata"],
            json!({"deletionTimestamp": "2026-11-26T23:07:07Z", "deletionGracePeriodSeconds": 0})
        );
        for bad in [i64::MAX, i64::MIN, 253_402_300_800] {
            let err = decode(&body("v1", "Namespace", &at(bad))).unwrap_err();
            assert!(err.contains("outside years 1-9999"), "{err}");
        }
    }

    #[test]
    fn corrupt_bodies_are_errors() {
        let ns = pb::Namespace {
            metadata: Some(meta("gen", "")),
            spec: None,
        };
        let good = body("v1", "Namespace", &ns);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "prefix"),
            (b"k8s".to_vec(), "prefix"),
            (br#"{"kind":"Namespace"}"#.to_vec(), "prefix"),
            (good[..good.len() - 3].to_vec(), "envelope"),
            (good[..good.len() / 2].to_vec(), "envelope"),
            (
                envelope("v1", "Namespace", vec![0x0f]),
                "cannot decode the Namespace",
            ),
            (
                envelope("v1", "Namespace", vec![0x0a, 0x05, b'x']),
                "cannot decode the Namespace",
            ),
            (
                envelope("v1", "Pod", vec![]),
                "accepted kinds: Namespace (v1)",
            ),
            (
                envelope("apps/v1beta1", "Deployment", vec![]),
                "Deployment (apps/v1)",
            ),
            (MAGIC.to_vec(), "accepted kinds"),
        ];
        for (bytes, want) in cases {
            let err = decode(&bytes).unwrap_err();
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
        let mut compressed = pb::Unknown::decode(&good[4..]).unwrap();
        compressed.content_encoding = s("gzip");
        let mut bytes = MAGIC.to_vec();
        bytes.extend(compressed.encode_to_vec());
        assert!(decode(&bytes).unwrap_err().contains("gzip"));
        let svc = pb::Service {
            metadata: None,
            spec: Some(pb::ServiceSpec {
                ports: vec![pb::ServicePort {
                    target_port: Some(pb::IntOrString {
                        r#type: Some(7),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let err = decode(&body("v1", "Service", &svc)).unwrap_err();
        assert!(err.contains("IntOrString type 7"), "{err}");
    }

    /// `raw` bytes captured from kubectl 1.32 (`create deployment web -n gen
    /// --image=nginx:1.27 --replicas=2`, `create service clusterip svc -n gen --tcp=80:8080`,
    /// `auth can-i create pods`), status included: the JSON is what kubectl would have sent.
    #[test]
    fn bodies_captured_from_kubectl() {
        let deployment =
            "0a220a0377656212001a0367656e22002a003200380042005a0a0a036170701203776562127f0802\
            120c0a0a0a0361707012037765621a650a1c0a0012001a0022002a003200380042005a0a0a036170\
            701203776562124512270a056e67696e78120a6e67696e783a312e32372a0042006a007200800100\
            880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a\
            00280038001a0c080010001800200028003800";
        let got = decode(&envelope("apps/v1", "Deployment", hex(deployment))).unwrap();
        let labels = json!({"app": "web"});
        assert_eq!(
            got,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "gen", "creationTimestamp": null,
                                "labels": labels},
                   "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                            "template": {
                                "metadata": {"creationTimestamp": null, "labels": labels},
                                "spec": {"containers": [
                                    {"name": "nginx", "image": "nginx:1.27", "resources": {}}]}},
                            "strategy": {}}})
        );
        let service =
            "0a220a0373766312001a0367656e22002a003200380042005a0a0a03617070120373766312420a1b\
            0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012037376631a\
            002209436c757374657249503a00420052005a00600068001a020a00";
        let got = decode(&envelope("v1", "Service", hex(service))).unwrap();
        assert_eq!(
            got["spec"],
            json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                              "targetPort": 8080}],
                   "selector": {"app": "svc"}, "type": "ClusterIP"})
        );
        let review =
            "0a100a0012001a0022002a0032003800420012210a1f0a0764656661756c7412066372656174651a\
            0022002a04706f647332003a001a08080012001a002000";
        let version = "authorization.k8s.io/v1";
        let got = decode(&envelope(version, "SelfSubjectAccessReview", hex(review))).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": version, "kind": "SelfSubjectAccessReview",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes":
                            {"namespace": "default", "verb": "create", "resource": "pods"}}})
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Whole bodies (prefix, envelope and object) captured from kubectl 1.32 with `-v=9`:
    /// `create serviceaccount robot3 -n cap`, `create role reader -n cap --verb=get,list
    /// --resource=pods --resource-name=x`, `create clusterrole logs --verb=get
    /// --resource=deployments.apps --non-resource-url=/logs/*`, `create rolebinding read2 -n
    /// cap --clusterrole=view --user=alice --serviceaccount=cap:robot --group=g`, `create
    /// clusterrolebinding logs --clusterrole=logs --user=bob` and `create token robot -n cap
    /// --duration=10m`.
    #[test]
    fn rbac_and_account_bodies_captured_from_kubectl() {
        let service_account =
            "6b3873000a140a027631120e536572766963654163636f756e74121b0a190a06726f626f74331200\
            1a0363617022002a003200380042001a002200";
        assert_eq!(
            decode(&hex(service_account)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "robot3", "namespace": "cap", "creationTimestamp": null}})
        );
        let role =
            "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f\
            6c6512330a190a0672656164657212001a0363617022002a0032003800420012160a036765740a04\
            6c69737412001a04706f64732201781a002200";
        assert_eq!(
            decode(&hex(role)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "Role",
                   "metadata": {"name": "reader", "namespace": "cap", "creationTimestamp": null},
                   "rules": [{"verbs": ["get", "list"], "apiGroups": [""],
                              "resources": ["pods"], "resourceNames": ["x"]}]})
        );
        let cluster_role =
            "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c\
            7573746572526f6c6512400a140a046c6f677312001a0022002a0032003800420012180a03676574\
            1204617070731a0b6465706c6f796d656e7473120e0a036765742a072f6c6f67732f2a1a002200";
        assert_eq!(
            decode(&hex(cluster_role)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "ClusterRole",
                   "metadata": {"name": "logs", "creationTimestamp": null},
                   "rules": [
                       {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]},
                       {"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]})
        );
        let rbac = "rbac.authorization.k8s.io";
        let role_binding =
            "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f\
            6c6542696e64696e6712bf010a180a05726561643212001a0363617022002a00320038004200122a\
            0a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a05616c696365\
            220012270a0547726f75701219726261632e617574686f72697a6174696f6e2e6b38732e696f1a01\
            672200121e0a0e536572766963654163636f756e7412001a05726f626f7422036361701a2e0a1972\
            6261632e617574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c651a0476\
            6965771a002200";
        assert_eq!(
            decode(&hex(role_binding)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "RoleBinding",
                   "metadata": {"name": "read2", "namespace": "cap", "creationTimestamp": null},
                   "subjects": [
                       {"kind": "User", "apiGroup": rbac, "name": "alice"},
                       {"kind": "Group", "apiGroup": rbac, "name": "g"},
                       {"kind": "ServiceAccount", "name": "robot", "namespace": "cap"}],
                   "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "view"}})
        );
        let cluster_role_binding =
            "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c\
            7573746572526f6c6542696e64696e6712700a140a046c6f677312001a0022002a00320038004200\
            12280a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a03626f62\
            22001a2e0a19726261632e617574686f72697a6174696f6e2e6b38732e696f120b436c7573746572\
            526f6c651a046c6f67731a002200";
        assert_eq!(
            decode(&hex(cluster_role_binding)).unwrap(),
            json!({"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
                   "metadata": {"name": "logs", "creationTimestamp": null},
                   "subjects": [{"kind": "User", "apiGroup": rbac, "name": "bob"}],
                   "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "logs"}})
        );
        let token_request =
            "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52\
            657175657374121d0a100a0012001a0022002a00320038004200120320d8041a040a0012001a0022\
            00";
        let version = "authentication.k8s.io/v1";
        assert_eq!(
            decode(&hex(token_request)).unwrap(),
            json!({"apiVersion": version, "kind": "TokenRequest",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"expirationSeconds": 600}})
        );
    }

    /// Whole bodies captured from kubectl 1.32: `create priorityclass high --value=1000
    /// --description="batch first"`, `create priorityclass nodef --value=-5 --global-default
    /// --preemption-policy=Never` and `create priorityclass zero` (a 0 value is still sent).
    #[test]
    fn priority_class_bodies_captured_from_kubectl() {
        let high =
            "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c\
            617373123e0a140a046869676812001a0022002a0032003800420010e8071800220b626174636820\
            66697273742a14507265656d70744c6f7765725072696f726974791a002200";
        let version = "scheduling.k8s.io/v1";
        assert_eq!(
            decode(&hex(high)).unwrap(),
            json!({"apiVersion": version, "kind": "PriorityClass",
                   "metadata": {"name": "high", "creationTimestamp": null},
                   "value": 1000, "description": "batch first",
                   "preemptionPolicy": "PreemptLowerPriority"})
        );
        let default_never =
            "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c\
            617373122d0a150a056e6f64656612001a0022002a0032003800420010fbffffffffffffffff0118\
            0122002a054e657665721a002200";
        assert_eq!(
            decode(&hex(default_never)).unwrap(),
            json!({"apiVersion": version, "kind": "PriorityClass",
                   "metadata": {"name": "nodef", "creationTimestamp": null},
                   "value": -5, "globalDefault": true, "preemptionPolicy": "Never"})
        );
        let zero =
            "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c\
            61737312320a140a047a65726f12001a0022002a003200380042001000180022002a14507265656d\
            70744c6f7765725072696f726974791a002200";
        assert_eq!(
            decode(&hex(zero)).unwrap()["value"],
            json!(0),
            "a plain int32: kept when sent"
        );
    }

    proptest! {
        /// Whatever the bytes, decoding returns; it never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.extend(&bytes);
            let _ = decode(&prefixed);
        }

        /// An intact envelope around arbitrary object bytes, for every accepted kind.
        #[test]
        fn arbitrary_objects_never_panic(
            which in 0..ACCEPTED.len(),
            raw in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let (api_version, kind) = ACCEPTED[which];
            let _ = decode(&envelope(api_version, kind, raw));
        }

        /// Well-formed RBAC objects with arbitrary strings decode, and every non-empty
        /// string arrives where it was sent.
        #[test]
        fn arbitrary_rbac_objects_decode(
            name in ".{0,12}",
            verbs in proptest::collection::vec(".{0,8}", 0..4),
            urls in proptest::collection::vec(".{0,8}", 0..3),
            subjects in proptest::collection::vec(
                (".{0,8}", ".{0,8}", ".{0,8}", ".{0,8}"), 0..4),
            cluster in any::<bool>(),
        ) {
            let metadata = Some(meta(&name, ""));
            let rules = vec![pb::PolicyRule {
                verbs: verbs.clone(),
                non_resource_ur_ls: urls.clone(),
                ..Default::default()
            }];
            let role = if cluster {
                let role = pb::ClusterRole {
                    metadata: metadata.clone(),
                    rules,
                };
                body(RBAC_V1, "ClusterRole", &role)
            } else {
                let role = pb::Role {
                    metadata: metadata.clone(),
                    rules,
                };
                body(RBAC_V1, "Role", &role)
            };
            let got = decode(&role).unwrap();
            let rule = &got["rules"][0];
            prop_assert_eq!(rule.get("verbs").cloned().unwrap_or(json!([])), json!(verbs));
            prop_assert_eq!(
                rule.get("nonResourceURLs").cloned().unwrap_or(json!([])),
                json!(urls)
            );
            let subjects: Vec<pb::Subject> =
                subjects.iter().map(|(k, g, n, ns)| subject(k, g, n, ns)).collect();
            let binding = pb::RoleBinding {
                metadata,
                subjects: subjects.clone(),
                role_ref: Some(role_ref("Role", &name)),
            };
            let got = decode(&body(RBAC_V1, "RoleBinding", &binding)).unwrap();
            prop_assert_eq!(&got["roleRef"]["name"], &json!(name));
            for (i, want) in subjects.iter().enumerate() {
                let sent = &got["subjects"][i];
                prop_assert_eq!(&sent["kind"], &json!(want.kind()));
                prop_assert_eq!(&sent["name"], &json!(want.name()));
                let group = sent.get("apiGroup").cloned().unwrap_or(json!(""));
                prop_assert_eq!(group, json!(want.api_group()));
            }
        }

        /// ServiceAccounts and TokenRequests with arbitrary contents decode.
        #[test]
        fn arbitrary_accounts_and_tokens_decode(
            secrets in proptest::collection::vec(".{0,8}", 0..4),
            automount in proptest::option::of(any::<bool>()),
            audiences in proptest::collection::vec(".{0,8}", 0..3),
            seconds in proptest::option::of(any::<i64>()),
        ) {
            let account = pb::ServiceAccount {
                metadata: Some(meta("sa", "ns")),
                secrets: secrets
                    .iter()
                    .map(|n| pb::ObjectReference {
                        name: s(n),
                        ..Default::default()
                    })
                    .collect(),
                automount_service_account_token: automount,
            };
            let got = decode(&body("v1", "ServiceAccount", &account)).unwrap();
            prop_assert_eq!(
                got.get("automountServiceAccountToken").cloned(),
                automount.map(Value::from)
            );
            let request = pb::TokenRequest {
                metadata: None,
                spec: Some(pb::TokenRequestSpec {
                    audiences: audiences.clone(),
                    expiration_seconds: seconds,
                }),
            };
            let version = "authentication.k8s.io/v1";
            let got = decode(&body(version, "TokenRequest", &request)).unwrap();
            let spec = &got["spec"];
            prop_assert_eq!(spec.get("expirationSeconds").cloned(), seconds.map(Value::from));
            prop_assert_eq!(spec.get("audiences").cloned().unwrap_or(json!([])), json!(audiences));
        }
    }
}
