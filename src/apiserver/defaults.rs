//! Defaulting, as upstream applies it to every object it decodes (create, update, patch):
//! the fields a client may leave out get the values Kubernetes documents, so every
//! controller, the scheduler and the kubelet read one complete shape. Also the pod admission
//! defaults (service account, not-ready/unreachable tolerations) and the status a new pod
//! starts with; a pod's priority comes from its PriorityClass ([`super::priority`]).
//!
//! Pure functions over JSON; a field the client set — even to something odd — is never
//! overwritten (validation judges it).

use serde_json::{json, Map, Value};

use super::resources::Resource;
use crate::api::apps::DEFAULT_REPLICAS;
use crate::api::scheduling::{DEFAULT_PRIORITY, PREEMPT_LOWER_PRIORITY};

/// How long pods tolerate a not-ready or unreachable node by default (upstream's
/// DefaultTolerationSeconds admission).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;
/// Grace period of a pod that does not say (upstream).
pub const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 30;
/// ReplicaSets of a Deployment kept for rollback (upstream).
pub const DEFAULT_REVISION_HISTORY_LIMIT: i64 = 10;
/// A Deployment not progressing for this long is reported as failed (upstream).
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
/// Mode of files projected from ConfigMaps and Secrets (0644).
pub const DEFAULT_VOLUME_FILE_MODE: i64 = 0o644;

/// Sets `key` to `value` unless the client set it.
fn or_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.to_string(), value);
        }
        Some(_) => {}
    }
}

/// The object at `path` inside `obj`, if it is a JSON object.
fn object_at<'a>(obj: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut at = obj;
    for p in path {
        at = at.as_object_mut()?.get_mut(*p)?;
    }
    at.as_object_mut()
}

/// Each object in the array at `key` of `map`.
fn each_in<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Fills in the defaults of `obj` as a `r`.
pub fn apply(r: &Resource, obj: &mut Value) {
    match (r.group, r.plural) {
        ("", "pods") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                pod_spec(spec);
            }
        }
        ("", "services") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                service_spec(spec);
            }
        }
        ("", "nodes") => {
            for key in ["capacity", "allocatable"] {
                if let Some(list) = object_at(obj, &["status", key]) {
                    quantities(list);
                }
            }
        }
        ("", "secrets") => {
            if let Some(map) = obj.as_object_mut() {
                or_default(map, "type", json!("Opaque"));
            }
        }
        ("", "endpoints") => {
            if let Some(map) = obj.as_object_mut() {
                for subset in each_in(map, "subsets") {
                    ports(subset);
                }
            }
        }
        ("discovery.k8s.io", "endpointslices") => {
            if let Some(map) = obj.as_object_mut() {
                ports(map);
            }
        }
        ("scheduling.k8s.io", "priorityclasses") => {
            if let Some(map) = obj.as_object_mut() {
                // Go's `value` is a plain int32 without `omitempty`: an absent one decodes as
                // 0 and is always written back.
                or_default(map, "value", json!(DEFAULT_PRIORITY));
                or_default(map, "preemptionPolicy", json!(PREEMPT_LOWER_PRIORITY));
            }
        }
        ("apps", plural @ ("deployments" | "replicasets" | "daemonsets")) => workload(plural, obj),
        _ => {}
    }
}

fn workload(plural: &str, obj: &mut Value) {
    if let Some(spec) = object_at(obj, &["spec", "template", "spec"]) {
        pod_spec(spec);
    }
    let Some(spec) = object_at(obj, &["spec"]) else {
        return;
    };
    match plural {
        "deployments" => {
            or_default(spec, "replicas", json!(DEFAULT_REPLICAS));
            or_default(
                spec,
                "revisionHistoryLimit",
                json!(DEFAULT_REVISION_HISTORY_LIMIT),
            );
            or_default(
                spec,
                "progressDeadlineSeconds",
                json!(DEFAULT_PROGRESS_DEADLINE_SECONDS),
            );
            or_default(spec, "strategy", json!({"type": "RollingUpdate"}));
            let strategy = spec["strategy"].as_object_mut();
            if let Some(s) = strategy.filter(|s| s.get("type") == Some(&json!("RollingUpdate"))) {
                or_default(s, "rollingUpdate", json!({}));
                if let Some(ru) = s["rollingUpdate"].as_object_mut() {
                    or_default(ru, "maxUnavailable", json!("25%"));
                    or_default(ru, "maxSurge", json!("25%"));
                }
            }
        }
        "replicasets" => or_default(spec, "replicas", json!(DEFAULT_REPLICAS)),
        _ => {
            or_default(
                spec,
                "revisionHistoryLimit",
                json!(DEFAULT_REVISION_HISTORY_LIMIT),
            );
            or_default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            let strategy = spec["updateStrategy"].as_object_mut();
            if let Some(s) = strategy.filter(|s| s.get("type") == Some(&json!("RollingUpdate"))) {
                or_default(s, "rollingUpdate", json!({}));
                if let Some(ru) = s["rollingUpdate"].as_object_mut() {
                    or_default(ru, "maxUnavailable", json!(1));
                    or_default(ru, "maxSurge", json!(0));
                }
            }
        }
    }
}

fn ports(map: &mut Map<String, Value>) {
    for port in each_in(map, "ports") {
        or_default(port, "protocol", json!("TCP"));
    }
}

fn service_spec(spec: &mut Map<String, Value>) {
    or_default(spec, "type", json!("ClusterIP"));
    or_default(spec, "sessionAffinity", json!("None"));
    let kind = spec["type"].as_str().unwrap_or("").to_string();
    if kind != "ExternalName" {
        or_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        or_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    for port in each_in(spec, "ports") {
        or_default(port, "protocol", json!("TCP"));
        if let Some(p) = port.get("port").cloned() {
            or_default(port, "targetPort", p);
        }
    }
}

/// Quantities written as JSON numbers (`cpu: 1` in YAML) become the strings Kubernetes
/// stores (`"1"`).
fn quantities(list: &mut Map<String, Value>) {
    for v in list.values_mut() {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (upstream).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Map<String, Value>) {
    or_default(p, "timeoutSeconds", json!(1));
    or_default(p, "periodSeconds", json!(10));
    or_default(p, "successThreshold", json!(1));
    or_default(p, "failureThreshold", json!(3));
}

fn container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = image_pull_policy(image);
    or_default(c, "imagePullPolicy", json!(policy));
    or_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    or_default(c, "terminationMessagePolicy", json!("File"));
    or_default(c, "resources", json!({}));
    ports(c);
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(key).and_then(Value::as_object_mut) {
            probe(p);
        }
    }
    if let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) {
        for key in ["requests", "limits"] {
            if let Some(list) = res.get_mut(key).and_then(Value::as_object_mut) {
                quantities(list);
            }
        }
    }
    // Limits without requests: the requests are the limits (upstream), which is what the
    // scheduler counts.
    if let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) {
        if let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() {
            or_default(res, "requests", json!({}));
            if let Some(req) = res["requests"].as_object_mut() {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
}

fn pod_spec(spec: &mut Map<String, Value>) {
    or_default(spec, "restartPolicy", json!("Always"));
    or_default(
        spec,
        "terminationGracePeriodSeconds",
        json!(DEFAULT_TERMINATION_GRACE_SECONDS),
    );
    or_default(spec, "dnsPolicy", json!("ClusterFirst"));
    or_default(spec, "securityContext", json!({}));
    or_default(spec, "schedulerName", json!("default-scheduler"));
    or_default(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        for c in each_in(spec, key) {
            container(c);
        }
    }
    for v in each_in(spec, "volumes") {
        for source in ["configMap", "secret"] {
            if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
                or_default(s, "defaultMode", json!(DEFAULT_VOLUME_FILE_MODE));
            }
        }
    }
}

/// What a new object of `r` gets on create only: pod admission ([`admit_new_pod`]) and a
/// namespace's `kubernetes` finalizer (later writes keep `spec.finalizers` as it is; only
/// the `finalize` subresource changes it).
pub fn admit_new(r: &Resource, obj: &mut Value) {
    match (r.group, r.plural) {
        ("", "pods") => admit_new_pod(obj),
        ("", "namespaces") => {
            if let Some(map) = obj.as_object_mut() {
                or_default(map, "spec", json!({}));
            }
            if let Some(spec) = object_at(obj, &["spec"]) {
                or_default(spec, "finalizers", json!(["kubernetes"]));
            }
        }
        _ => {}
    }
}

/// Pod admission on create: the `default` service account, tolerations of not-ready and
/// unreachable nodes for [`DEFAULT_TOLERATION_SECONDS`], and the status a new pod starts
/// with. (Priority is the Priority admission's, [`super::priority::admit_new_pod`].)
pub fn admit_new_pod(pod: &mut Value) {
    if let Some(spec) = object_at(pod, &["spec"]) {
        or_default(spec, "serviceAccountName", json!("default"));
        let sa = spec["serviceAccountName"].clone();
        or_default(spec, "serviceAccount", sa);
        default_tolerations(spec);
    }
    let qos = qos_class(&pod["spec"]);
    if let Some(map) = pod.as_object_mut() {
        map.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos}),
        );
    }
}

fn default_tolerations(spec: &mut Map<String, Value>) {
    or_default(spec, "tolerations", json!([]));
    let Some(list) = spec["tolerations"].as_array_mut() else {
        return;
    };
    for taint in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        // Any toleration of this taint's NoExecute effect (or of every effect) stands.
        let covered = list.iter().any(|t| {
            let key_ok = t["key"] == taint || (t["key"].is_null() && t["operator"] == "Exists");
            let effect_ok =
                t["effect"].is_null() || t["effect"] == "" || t["effect"] == "NoExecute";
            key_ok && effect_ok
        });
        if !covered {
            list.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

/// Guaranteed (every container limits cpu and memory, requests equal limits), BestEffort (no
/// requests or limits anywhere), Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    let all: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .collect();
    let nonempty = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty());
    let any_set = all
        .iter()
        .any(|c| nonempty(&c["resources"]["requests"]) || nonempty(&c["resources"]["limits"]));
    if !any_set {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
        ["cpu", "memory"].iter().all(|r| !lim[*r].is_null())
            && req
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| lim[k.as_str()] == *v)
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;

    fn res(group: &str, plural: &str) -> &'static Resource {
        resources::find(group, "v1", plural).unwrap()
    }

    #[test]
    fn pods_get_upstream_defaults_and_keep_what_was_set() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
                 "readinessProbe": {"httpGet": {"port": 80}}},
                {"name": "b", "image": "reg:5000/x/nginx:1.25",
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        apply(res("", "pods"), &mut pod);
        admit_new_pod(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Never", "set by the client");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["serviceAccountName"], "default");
        let c = &spec["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(c[0]["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(c[1]["resources"]["requests"]["cpu"], "1");
        let mut numeric = json!({"spec": {"containers": [{"name": "a", "image": "i",
            "resources": {"limits": {"cpu": 1, "memory": 1.5}}}]}});
        apply(res("", "pods"), &mut numeric);
        let r = &numeric["spec"]["containers"][0]["resources"];
        assert_eq!(
            (r["limits"]["cpu"].clone(), r["requests"]["memory"].clone()),
            (json!("1"), json!("1.5"))
        );
        let tol = spec["tolerations"].as_array().unwrap();
        assert_eq!(tol.len(), 2);
        assert_eq!(tol[1]["key"], "node.kubernetes.io/unreachable");
        assert_eq!(tol[1]["tolerationSeconds"], 300);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
    }

    #[test]
    fn tolerations_already_covering_a_taint_are_left_alone() {
        let mut pod = json!({"spec": {"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
            {"operator": "Exists"}]}});
        admit_new_pod(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn qos_classes() {
        let c = |res: Value| json!({"containers": [{"name": "a", "resources": res}]});
        assert_eq!(qos_class(&c(json!({}))), "BestEffort");
        let both = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos_class(&c(both)), "Guaranteed");
        let less = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}});
        assert_eq!(qos_class(&c(less)), "Burstable");
        assert_eq!(
            qos_class(&c(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }

    #[test]
    fn image_pull_policies() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn services_workloads_and_namespaces() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply(res("", "services"), &mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        apply(res("apps", "deployments"), &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply(res("apps", "deployments"), &mut recreate);
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        let mut ds = json!({"spec": {}});
        apply(res("apps", "daemonsets"), &mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        let mut ns = json!({"metadata": {"name": "n"}});
        apply(res("", "namespaces"), &mut ns);
        assert_eq!(ns.get("spec"), None, "only on create");
        admit_new(res("", "namespaces"), &mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        let mut secret = json!({});
        apply(res("", "secrets"), &mut secret);
        assert_eq!(secret["type"], "Opaque");
    }

    #[test]
    fn priority_classes_get_a_value_and_a_preemption_policy() {
        let pcs = resources::find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let mut pc = json!({"metadata": {"name": "bare"}});
        apply(pcs, &mut pc);
        assert_eq!(pc["value"], 0);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        let mut set = json!({"metadata": {"name": "set"}, "value": 7, "preemptionPolicy": "Never"});
        let before = set.clone();
        apply(pcs, &mut set);
        assert_eq!(set, before, "what the client set stays");
        // An empty policy is the client's: validation refuses it (upstream: Required).
        let mut empty = json!({"preemptionPolicy": ""});
        apply(pcs, &mut empty);
        assert_eq!(empty["preemptionPolicy"], "");
    }
}
