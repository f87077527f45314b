//! Pure object rules: what the server sets on create, keeps on update, and how stored bytes
//! become the object a client sees. Time and randomness come in as arguments.

use serde_json::Value;

use super::resources::Resource;
use crate::api::meta::{dns_label_problem, dns_subdomain_problem};
use crate::api::{fail, time, ObjectMeta, Status};

/// Characters Kubernetes uses for `generateName` suffixes (no vowels, no look-alikes).
const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Length of a `generateName` suffix.
const NAME_SUFFIX_LEN: usize = 5;

/// Server-side inputs to a create.
pub struct CreateInputs {
    pub now_unix_ms: i64,
    /// Random bits for the uid and a generated name.
    pub random: [u64; 3],
}

/// The object's metadata, parsed; a 400 Status if it is not an object or has bad metadata.
pub fn meta_of(obj: &Value) -> Result<ObjectMeta, Box<Status>> {
    let Some(map) = obj.as_object() else {
        return fail(Status::bad_request(
            "the request body must be a JSON object".into(),
        ));
    };
    match map.get("metadata") {
        None => Ok(ObjectMeta::default()),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| Box::new(Status::bad_request(format!("invalid metadata: {e}")))),
    }
}

/// Checks `apiVersion`/`kind` (if given) against the resource and fills them in.
pub fn check_type(obj: &mut Value, r: &Resource) -> Result<(), Box<Status>> {
    let want_version = r.api_version();
    let map = obj.as_object_mut().expect("checked by meta_of");
    if let Some(v) = map.get("apiVersion").and_then(Value::as_str) {
        if v != want_version {
            return fail(Status::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want_version})"
            )));
        }
    }
    if let Some(k) = map.get("kind").and_then(Value::as_str) {
        if k != r.kind {
            return fail(Status::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )));
        }
    }
    map.insert("apiVersion".into(), Value::String(want_version));
    map.insert("kind".into(), Value::String(r.kind.into()));
    Ok(())
}

fn uid(random: [u64; 3]) -> String {
    let hex = format!("{:016x}{:016x}", random[0], random[1]);
    // RFC 4122 version 4 layout.
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][(random[2] % 4) as usize],
        &hex[17..20],
        &hex[20..32]
    )
}

fn name_suffix(mut bits: u64) -> String {
    let n = NAME_SUFFIX_ALPHABET.len() as u64;
    (0..NAME_SUFFIX_LEN)
        .map(|_| {
            let c = NAME_SUFFIX_ALPHABET[(bits % n) as usize] as char;
            bits /= n;
            c
        })
        .collect()
}

/// Why a name cannot be a URL path segment (the rule for RBAC object names).
pub fn path_segment_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("name or generateName is required".into());
    }
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == '%') {
        return Some(format!("may not contain '{c}'"));
    }
    None
}

/// Sets what the server owns on a new object (name from `generateName`, namespace, uid,
/// creation time, generation) and validates the name. Returns the final metadata.
pub fn prepare_create(
    obj: &mut Value,
    r: &Resource,
    namespace: Option<&str>,
    inputs: &CreateInputs,
) -> Result<ObjectMeta, Box<Status>> {
    let mut meta = meta_of(obj)?;
    check_type(obj, r)?;
    if meta.name.is_empty() && !meta.generate_name.is_empty() {
        meta.name = format!("{}{}", meta.generate_name, name_suffix(inputs.random[2]));
    }
    match namespace {
        Some(ns) if r.namespaced => {
            if !meta.namespace.is_empty() && meta.namespace != ns {
                return fail(Status::bad_request("the namespace of the provided object does not match the namespace sent on the request".into()));
            }
            meta.namespace = ns.to_string();
        }
        _ => meta.namespace.clear(),
    }
    let problem = match (r.group, r.plural) {
        ("", "namespaces") => dns_label_problem(&meta.name),
        // RBAC names are path segments, so `system:node` is a valid role name.
        ("rbac.authorization.k8s.io", _) => path_segment_problem(&meta.name),
        _ => dns_subdomain_problem(&meta.name),
    };
    if let Some(p) = problem {
        return fail(Status::invalid(r.kind, &meta.name, "metadata.name", &p));
    }
    meta.uid = uid(inputs.random);
    meta.resource_version.clear();
    meta.generation = 1;
    meta.creation_timestamp = Some(time::rfc3339(inputs.now_unix_ms));
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    if r.plural == "namespaces" {
        obj["status"] = serde_json::json!({"phase": "Active"});
    }
    set_meta(obj, &meta);
    Ok(meta)
}

/// Merges a replacement (PUT) with the stored object: the server keeps uid, creation time
/// and deletion state; generation moves only when `spec` changes.
pub fn prepare_update(
    new: &mut Value,
    old: &Value,
    r: &Resource,
) -> Result<ObjectMeta, Box<Status>> {
    let mut meta = meta_of(new)?;
    check_type(new, r)?;
    let old_meta = meta_of(old)?;
    if !meta.name.is_empty() && meta.name != old_meta.name {
        return fail(Status::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            meta.name, old_meta.name
        )));
    }
    meta.name = old_meta.name.clone();
    meta.namespace = old_meta.namespace.clone();
    meta.uid = old_meta.uid.clone();
    meta.creation_timestamp = old_meta.creation_timestamp.clone();
    meta.deletion_timestamp = old_meta.deletion_timestamp.clone();
    meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds;
    meta.generation = old_meta.generation.max(1);
    if new.get("spec") != old.get("spec") {
        meta.generation += 1;
    }
    meta.resource_version.clear();
    set_meta(new, &meta);
    Ok(meta)
}

/// On the main endpoint, what subresources own is kept as it was: `status` (the status
/// subresource) and a namespace's `spec.finalizers` (the `finalize` subresource, which the
/// namespace controller alone may use).
pub fn keep_subresource_fields(new: &mut Value, old: &Value, r: &Resource) {
    // A patch may have produced a non-object; the caller refuses it, nothing to keep here.
    let Some(map) = new.as_object_mut() else {
        return;
    };
    if r.has_status() {
        match old.get("status") {
            Some(s) => map.insert("status".into(), s.clone()),
            None => map.remove("status"),
        };
    }
    if r.group.is_empty() && r.plural == "namespaces" {
        let spec = map
            .entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(spec) = spec.as_object_mut() {
            match old["spec"].get("finalizers") {
                Some(f) => spec.insert("finalizers".into(), f.clone()),
                None => spec.remove("finalizers"),
            };
        }
    }
}

/// `old` with `status` replaced (what `PUT .../status` stores); everything else is kept.
pub fn with_status(old: &Value, status: Option<&Value>) -> Value {
    let mut out = old.clone();
    let map = out.as_object_mut().expect("objects are JSON objects");
    match status {
        Some(s) => map.insert("status".into(), s.clone()),
        None => map.remove("status"),
    };
    out
}

/// The `autoscaling/v1` Scale view of a scalable object.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    serde_json::json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// The replica count a Scale asks for; a 422 Status if it is not a whole number ≥ 0.
pub fn scale_replicas(scale: &Value, kind: &str, name: &str) -> Result<i64, Box<Status>> {
    match scale["spec"]["replicas"].as_i64() {
        Some(n) if n >= 0 => Ok(n),
        _ => fail(Status::invalid(
            kind,
            name,
            "spec.replicas",
            "must be greater than or equal to 0",
        )),
    }
}

/// The pod bound to `node` (`spec.nodeName` and a `PodScheduled` condition); a 409 Status
/// if it is already assigned or being deleted.
pub fn bind_pod(pod: &Value, name: &str, node: &str, now: &str) -> Result<Value, Box<Status>> {
    if let Some(current) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        let m = format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{current}\"");
        return fail(Status::failure(409, "Conflict", m));
    }
    if pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        let m = format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host");
        return fail(Status::failure(409, "Conflict", m));
    }
    let mut out = pod.clone();
    out["spec"]["nodeName"] = Value::String(node.to_string());
    let cond = serde_json::json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let mut conditions: Vec<Value> = out["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "PodScheduled");
    conditions.push(cond);
    out["status"]["conditions"] = Value::Array(conditions);
    Ok(out)
}

/// What a DELETE does to an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// Remove it from the store now.
    Remove,
    /// Keep it, marked with `deletionTimestamp` (finalizers pending, or a bound pod that
    /// gets a grace period to stop): this is the marked object.
    Mark(Value),
    /// It is already being deleted and nothing changes.
    AlreadyMarked,
}

/// Default grace period of a pod that does not set `terminationGracePeriodSeconds`.
pub const DEFAULT_POD_GRACE_SECS: i64 = 30;

/// Decides a DELETE: objects with finalizers are only marked; a pod bound to a node gets its
/// grace period (the kubelet deletes it with grace 0 once its containers stopped); anything
/// else goes at once.
pub fn deletion_step(
    r: &Resource,
    obj: &Value,
    grace_override: Option<i64>,
    now_ms: i64,
) -> Deletion {
    let meta = &obj["metadata"];
    let has_finalizers =
        meta["finalizers"].as_array().is_some_and(|f| !f.is_empty()) || namespace_finalizers(obj);
    let bound_pod = r.plural == "pods"
        && obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
    let grace = if bound_pod {
        let default = obj["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_POD_GRACE_SECS);
        grace_override.unwrap_or(default).max(0)
    } else {
        0
    };
    let marked = meta.get("deletionTimestamp").is_some_and(|t| !t.is_null());
    if !has_finalizers && grace == 0 {
        return Deletion::Remove;
    }
    let current_grace = meta["deletionGracePeriodSeconds"].as_i64();
    if marked && current_grace.is_some_and(|g| g <= grace) {
        return Deletion::AlreadyMarked;
    }
    let mut out = obj.clone();
    out["metadata"]["deletionTimestamp"] = Value::String(time::rfc3339(now_ms + grace * 1000));
    out["metadata"]["deletionGracePeriodSeconds"] = Value::from(grace);
    if r.plural == "namespaces" {
        out["status"]["phase"] = Value::String("Terminating".into());
    }
    Deletion::Mark(out)
}

/// A Namespace whose `spec.finalizers` (the namespace controller's) are not all done.
fn namespace_finalizers(obj: &Value) -> bool {
    obj["kind"] == "Namespace"
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
}

/// Whether a DELETE has marked `obj` (it waits for finalizers or a grace period).
pub fn is_being_deleted(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// An object being deleted whose finalizers are all gone (and whose grace period was cut to
/// zero): it must leave the store.
pub fn deletion_complete(obj: &Value) -> bool {
    let meta = &obj["metadata"];
    let marked = meta.get("deletionTimestamp").is_some_and(|t| !t.is_null());
    let finalizers =
        meta["finalizers"].as_array().is_some_and(|f| !f.is_empty()) || namespace_finalizers(obj);
    marked && !finalizers && meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
}

/// A copy without `metadata.resourceVersion` (the store's revision is the version).
pub fn without_rv(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    out
}

/// Replaces `obj.metadata` with `meta`.
pub fn set_meta(obj: &mut Value, meta: &ObjectMeta) {
    obj["metadata"] = serde_json::to_value(meta).expect("metadata serializes");
}

/// A stored object as clients see it: its `resourceVersion` is the revision that wrote it.
pub fn from_stored(bytes: &[u8], mod_revision: i64) -> Result<Value, String> {
    let mut obj: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("stored object is not JSON: {e}"))?;
    if !obj.is_object() {
        return Err("stored object is not a JSON object".into());
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = serde_json::json!({});
    }
    obj["metadata"]["resourceVersion"] = Value::String(mod_revision.to_string());
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;
    use serde_json::json;

    fn inputs() -> CreateInputs {
        CreateInputs {
            now_unix_ms: 1_795_734_427_000,
            random: [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 7],
        }
    }

    #[test]
    fn create_sets_server_fields_and_generates_names() {
        let cm = resources::find("", "v1", "configmaps").unwrap();
        let mut obj = json!({"metadata": {"generateName": "cfg-", "resourceVersion": "9"}, "data": {"a": "1"}});
        let meta = prepare_create(&mut obj, cm, Some("default"), &inputs()).unwrap();
        assert!(
            meta.name.starts_with("cfg-") && meta.name.len() == 9,
            "{}",
            meta.name
        );
        assert_eq!(obj["kind"], "ConfigMap");
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(obj["metadata"]["generation"], 1);
        assert_eq!(obj["metadata"]["creationTimestamp"], "2026-11-26T23:07:07Z");
        assert_eq!(obj["metadata"].get("resourceVersion"), None);
        assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert_eq!(obj["data"]["a"], "1");
    }

    #[test]
    fn rbac_names_are_path_segments() {
        let roles = resources::find("rbac.authorization.k8s.io", "v1", "clusterroles").unwrap();
        let mut role = json!({"metadata": {"name": "system:node"}});
        assert!(prepare_create(&mut role, roles, None, &inputs()).is_ok());
        let mut bad = json!({"metadata": {"name": "a/b"}});
        assert!(prepare_create(&mut bad, roles, None, &inputs()).is_err());
        let cms = resources::find("", "v1", "configmaps").unwrap();
        let mut cm = json!({"metadata": {"name": "system:node"}});
        assert!(prepare_create(&mut cm, cms, Some("a"), &inputs()).is_err());
    }

    #[test]
    fn create_refuses_bad_names_kinds_and_namespaces() {
        let cm = resources::find("", "v1", "configmaps").unwrap();
        let bad = |mut obj: Value| {
            prepare_create(&mut obj, cm, Some("a"), &inputs())
                .unwrap_err()
                .code
        };
        assert_eq!(bad(json!({"metadata": {"name": "Bad_Name"}})), 422);
        assert_eq!(bad(json!({"metadata": {}})), 422);
        assert_eq!(bad(json!({"kind": "Pod", "metadata": {"name": "x"}})), 400);
        assert_eq!(
            bad(json!({"apiVersion": "apps/v1", "metadata": {"name": "x"}})),
            400
        );
        assert_eq!(
            bad(json!({"metadata": {"name": "x", "namespace": "b"}})),
            400
        );
        assert_eq!(bad(json!([1])), 400);
    }

    #[test]
    fn update_keeps_server_fields_and_bumps_generation_on_spec_change_only() {
        let d = resources::find("apps", "v1", "deployments").unwrap();
        let mut old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let old_meta = prepare_create(&mut old, d, Some("a"), &inputs()).unwrap();
        let mut same =
            json!({"metadata": {"name": "web", "labels": {"x": "1"}}, "spec": {"replicas": 1}});
        let m = prepare_update(&mut same, &old, d).unwrap();
        assert_eq!((m.generation, &m.uid), (1, &old_meta.uid));
        assert_eq!(m.labels.get("x").map(String::as_str), Some("1"));
        let mut scaled = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}});
        assert_eq!(prepare_update(&mut scaled, &old, d).unwrap().generation, 2);
        let mut renamed = json!({"metadata": {"name": "other"}});
        assert_eq!(prepare_update(&mut renamed, &old, d).unwrap_err().code, 400);
    }

    #[test]
    fn status_and_scale_views() {
        let d = resources::find("apps", "v1", "deployments").unwrap();
        let old = json!({"metadata": {"name": "web", "resourceVersion": "7"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}, "status": {"replicas": 9}});
        keep_subresource_fields(&mut new, &old, d);
        assert_eq!(new["status"]["replicas"], 1);
        // A namespace's finalizers belong to the finalize subresource.
        let ns = resources::find("", "v1", "namespaces").unwrap();
        let terminating = json!({"spec": {"finalizers": ["kubernetes"]}});
        let mut cleared = json!({"spec": {}, "metadata": {"labels": {"a": "b"}}});
        keep_subresource_fields(&mut cleared, &terminating, ns);
        assert_eq!(cleared["spec"]["finalizers"], json!(["kubernetes"]));
        let s = with_status(&old, Some(&json!({"replicas": 2})));
        assert_eq!(
            (
                s["status"]["replicas"].as_i64(),
                s["spec"]["replicas"].as_i64()
            ),
            (Some(2), Some(2))
        );
        let scale = scale_of(&old);
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        assert_eq!(
            scale_replicas(&json!({"spec": {"replicas": -1}}), "Deployment", "web")
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn deletion_marks_finalized_objects_and_bound_pods() {
        let cm = resources::find("", "v1", "configmaps").unwrap();
        let pods = resources::find("", "v1", "pods").unwrap();
        let now = 1_795_734_427_000;
        assert_eq!(
            deletion_step(cm, &json!({"metadata": {"name": "c"}}), None, now),
            Deletion::Remove
        );
        let kept = json!({"metadata": {"name": "c", "finalizers": ["x/y"]}});
        let Deletion::Mark(m) = deletion_step(cm, &kept, None, now) else {
            panic!("not marked")
        };
        assert_eq!(m["metadata"]["deletionTimestamp"], "2026-11-26T23:07:07Z");
        assert_eq!(m["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(deletion_step(cm, &m, None, now), Deletion::AlreadyMarked);
        assert!(!deletion_complete(&m), "finalizers still pending");
        let mut released = m.clone();
        released["metadata"]["finalizers"] = json!([]);
        assert!(deletion_complete(&released));

        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
        let Deletion::Mark(p) = deletion_step(pods, &pod, None, now) else {
            panic!("not marked")
        };
        assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 10);
        assert_eq!(p["metadata"]["deletionTimestamp"], "2026-11-26T23:07:17Z");
        assert!(!deletion_complete(&p));
        assert_eq!(
            deletion_step(pods, &p, Some(0), now),
            Deletion::Remove,
            "grace 0 forces"
        );
        let unbound = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(deletion_step(pods, &unbound, None, now), Deletion::Remove);
    }

    #[test]
    fn binding_assigns_once() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let bound = bind_pod(&pod, "p", "n1", "2026-11-26T23:07:07Z").unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
        let again = bind_pod(&bound, "p", "n2", "t").unwrap_err();
        assert_eq!(again.code, 409);
        assert!(again.message.contains("already assigned to node \"n1\""));
    }

    #[test]
    fn stored_objects_carry_their_revision() {
        let v = from_stored(br#"{"metadata":{"name":"a"}}"#, 42).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert!(from_stored(b"nope", 1).is_err());
    }
}
