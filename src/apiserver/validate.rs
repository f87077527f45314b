//! Per-kind validation of the fields the rest of the cluster relies on, with upstream's field
//! paths and wording (`Pod "p" is invalid: spec.containers: Required value`). It is not
//! upstream's full validation; it rejects what would break a controller, the scheduler or the
//! kubelet.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::resources::Resource;
use crate::api::meta::{dns_label_problem, label_value_problem, qualified_name_problem};
use crate::api::scheduling::{
    system_priority_classes, HIGHEST_USER_DEFINABLE_PRIORITY, PREEMPT_LOWER_PRIORITY,
    PREEMPT_NEVER, SYSTEM_PRIORITY_CLASS_PREFIX,
};
use crate::api::selector::{LabelSelector, LabelSelectorRequirement};
use crate::api::status::{StatusCause, StatusDetails};
use crate::api::Status;

/// One problem: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

fn required(field: &str) -> Problem {
    Problem {
        field: field.into(),
        message: "Required value".into(),
    }
}

fn invalid(field: &str, value: &Value, why: &str) -> Problem {
    Problem {
        field: field.into(),
        message: format!("Invalid value: {value}: {why}"),
    }
}

fn containers(spec: &Value, path: &str, out: &mut Vec<Problem>) {
    let list = spec["containers"].as_array().filter(|c| !c.is_empty());
    let Some(list) = list else {
        out.push(required(&format!("{path}.containers")));
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => out.push(required(&format!("{at}.name"))),
            Some(n) => {
                if let Some(p) = dns_label_problem(n) {
                    out.push(invalid(&format!("{at}.name"), &c["name"], &p));
                } else if !seen.insert(n.to_string()) {
                    out.push(Problem {
                        field: format!("{at}.name"),
                        message: format!("Duplicate value: {:?}", n),
                    });
                }
            }
        }
        if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
            out.push(required(&format!("{at}.image")));
        }
    }
}

fn pod_template_owner(obj: &Value, out: &mut Vec<Problem>) {
    let spec = &obj["spec"];
    let has_labels = spec["selector"]["matchLabels"]
        .as_object()
        .is_some_and(|s| !s.is_empty());
    let has_expressions = spec["selector"]["matchExpressions"]
        .as_array()
        .is_some_and(|e| !e.is_empty());
    if !has_labels && !has_expressions {
        out.push(required("spec.selector"));
    }
    if !spec["selector"].is_null() {
        selector_matches_template(spec, out);
    }
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        out.push(invalid(
            "spec.replicas",
            &spec["replicas"],
            "must be greater than or equal to 0",
        ));
    }
    containers(&spec["template"]["spec"], "spec.template.spec", out);
}

/// Upstream's check that a workload's pods will be its own: `spec.selector` (labels and
/// expressions, as the controllers read it) must select the template's labels; a selector
/// upstream cannot parse (an unknown operator, `In` without values, ...) is invalid.
fn selector_matches_template(spec: &Value, out: &mut Vec<Problem>) {
    let parsed = LabelSelector::deserialize(&spec["selector"]).ok();
    let Some(selector) = parsed.filter(|s| s.match_expressions.iter().all(parses)) else {
        out.push(invalid(
            "spec.selector",
            &spec["selector"],
            "invalid label selector",
        ));
        return;
    };
    let labels = &spec["template"]["metadata"]["labels"];
    // Labels that are not all strings match nothing (the shape check refuses them first).
    let template = match labels {
        Value::Null => Some(BTreeMap::new()),
        _ => BTreeMap::<String, String>::deserialize(labels).ok(),
    };
    if !template.is_some_and(|t| selector.matches(&t)) {
        out.push(invalid(
            "spec.template.metadata.labels",
            labels,
            "`selector` does not match template `labels`",
        ));
    }
}

/// Whether upstream's `LabelSelectorAsSelector` accepts the expression: a known operator,
/// with values for `In`/`NotIn` and none for `Exists`/`DoesNotExist`.
fn parses(r: &LabelSelectorRequirement) -> bool {
    match r.operator.as_str() {
        "In" | "NotIn" => !r.values.is_empty(),
        "Exists" | "DoesNotExist" => r.values.is_empty(),
        _ => false,
    }
}

/// Largest total size of an object's annotations (keys and values), as upstream.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

fn metadata(meta: &Value, out: &mut Vec<Problem>) {
    for (k, v) in meta["labels"].as_object().into_iter().flatten() {
        if let Some(p) = qualified_name_problem(k) {
            out.push(invalid("metadata.labels", &Value::String(k.clone()), &p));
        }
        match v.as_str() {
            Some(text) => {
                if let Some(p) = label_value_problem(text) {
                    out.push(invalid("metadata.labels", v, &p));
                }
            }
            None => out.push(invalid(
                "metadata.labels",
                v,
                "label values must be strings",
            )),
        }
    }
    let mut total = 0;
    for (k, v) in meta["annotations"].as_object().into_iter().flatten() {
        if let Some(p) = qualified_name_problem(k) {
            out.push(invalid(
                "metadata.annotations",
                &Value::String(k.clone()),
                &p,
            ));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > MAX_ANNOTATIONS_BYTES {
        out.push(Problem {
            field: "metadata.annotations".into(),
            message: format!("Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"),
        });
    }
}

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

fn service(spec: &Value, out: &mut Vec<Problem>) {
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&kind) {
        out.push(Problem {
            field: "spec.type".into(),
            message: format!(
                "Unsupported value: {:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                kind
            ),
        });
    }
    let ports = spec["ports"].as_array().map_or(&[][..], Vec::as_slice);
    let headless = spec["clusterIP"] == "None";
    if ports.is_empty() && kind != "ExternalName" && !headless {
        out.push(required("spec.ports"));
    }
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match port["port"].as_i64() {
            Some(1..=65535) => {}
            None => out.push(required(&format!("{at}.port"))),
            Some(_) => out.push(invalid(
                &format!("{at}.port"),
                &port["port"],
                "must be between 1 and 65535, inclusive",
            )),
        }
        if ports.len() > 1 && port["name"].as_str().is_none_or(str::is_empty) {
            out.push(required(&format!("{at}.name")));
        }
    }
}

/// ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, at most 253 bytes.
fn data_keys(obj: &Value, out: &mut Vec<Problem>) {
    for field in ["data", "binaryData", "stringData"] {
        for k in obj[field].as_object().into_iter().flatten().map(|(k, _)| k) {
            let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
            if k.is_empty() || k.len() > 253 || !k.chars().all(ok_char) || k == "." || k == ".." {
                out.push(invalid(
                    &format!("{field}[{k}]"),
                    &Value::String(k.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
}

/// Upstream's `ValidatePriorityClass` (on create only: upstream's update validation checks
/// just what may not change, so the reserved-name rule is not re-applied to an update).
fn priority_class(obj: &Value, out: &mut Vec<Problem>) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let value = obj["value"].as_i64().unwrap_or(0);
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        if let Err(why) = known_system_class(name, value, obj["globalDefault"] == true) {
            out.push(Problem {
                field: "metadata.name".into(),
                message: format!("Forbidden: priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {why}"),
            });
        }
    } else if value > i64::from(HIGHEST_USER_DEFINABLE_PRIORITY) {
        out.push(Problem {
            field: "value".into(),
            message: format!("Forbidden: maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        });
    }
    if let Some(p) = obj.get("preemptionPolicy").filter(|p| !p.is_null()) {
        preemption_policy(p, "preemptionPolicy", out);
    }
}

/// Upstream's `IsKnownSystemPriorityClass`: a `system-` name must be one of the system
/// classes, with its value and (not) global default.
fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    let classes = system_priority_classes();
    let Some(known) = classes.iter().find(|c| c.metadata.name == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if i64::from(known.value) != value {
        return Err(format!(
            "value of {name} PriorityClass must be {}",
            known.value
        ));
    }
    if known.global_default != global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be {}",
            known.global_default
        ));
    }
    Ok(())
}

/// Upstream's `ValidatePreemptionPolicy`.
fn preemption_policy(p: &Value, field: &str, out: &mut Vec<Problem>) {
    match p.as_str() {
        Some(PREEMPT_LOWER_PRIORITY | PREEMPT_NEVER) => {}
        Some("") => out.push(required(field)),
        _ => out.push(Problem {
            field: field.into(),
            message: format!("Unsupported value: {p}: supported values: \"{PREEMPT_LOWER_PRIORITY}\", \"{PREEMPT_NEVER}\""),
        }),
    }
}

/// The problems of `obj` as a `r` (empty when it is acceptable).
pub fn problems(r: &Resource, obj: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    metadata(&obj["metadata"], &mut out);
    match r.plural {
        "pods" => containers(&obj["spec"], "spec", &mut out),
        "priorityclasses" => priority_class(obj, &mut out),
        "services" => service(&obj["spec"], &mut out),
        "configmaps" | "secrets" => data_keys(obj, &mut out),
        "deployments" | "replicasets" => pod_template_owner(obj, &mut out),
        "daemonsets" => {
            pod_template_owner(obj, &mut out);
            out.retain(|p| p.field != "spec.replicas");
        }
        _ => {}
    }
    out
}

/// What an update may not change (`new` replacing `old`).
pub fn update_problems(r: &Resource, new: &Value, old: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let immutable = |field: &str, value: &Value| Problem {
        field: field.into(),
        message: format!("Invalid value: {value}: field is immutable"),
    };
    match r.plural {
        "deployments" | "replicasets" | "daemonsets"
            if new["spec"]["selector"] != old["spec"]["selector"] =>
        {
            out.push(immutable("spec.selector", &new["spec"]["selector"]));
        }
        "services" => {
            let ip = &old["spec"]["clusterIP"];
            if ip.as_str().is_some_and(|s| !s.is_empty()) && new["spec"]["clusterIP"] != *ip {
                out.push(immutable("spec.clusterIP", &new["spec"]["clusterIP"]));
            }
        }
        "configmaps" | "secrets" if old["immutable"] == true => {
            for field in ["data", "binaryData", "immutable"] {
                if new[field] != old[field] {
                    out.push(Problem {
                        field: field.into(),
                        message: "Forbidden: field is immutable when `immutable` is set".into(),
                    });
                }
            }
        }
        "pods" => pod_update(new, old, &mut out),
        "priorityclasses" => {
            if new["value"] != old["value"] {
                out.push(Problem {
                    field: "value".into(),
                    message: "Forbidden: may not be changed in an update.".into(),
                });
            }
            if new["preemptionPolicy"] != old["preemptionPolicy"] {
                out.push(immutable("preemptionPolicy", &new["preemptionPolicy"]));
            }
        }
        _ => {}
    }
    out
}

/// Upstream allows a pod's spec to change only in images, the active deadline, added
/// tolerations and a negative grace period set to 1.
fn pod_update(new: &Value, old: &Value, out: &mut Vec<Problem>) {
    let mut allowed = old["spec"].clone();
    for list in ["containers", "initContainers"] {
        let news = new["spec"][list].as_array();
        // `get_mut`, not indexing: indexing would insert a null for a missing list.
        let olds = allowed.get_mut(list).and_then(Value::as_array_mut);
        if let (Some(news), Some(olds)) = (news, olds) {
            for (o, n) in olds.iter_mut().zip(news) {
                // `get_mut`: a malformed stored list entry must not panic the server.
                if let Some(slot) = o.get_mut("image") {
                    *slot = n["image"].clone();
                }
            }
        }
    }
    if let Some(spec) = allowed.as_object_mut() {
        for field in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
            match new["spec"].get(field) {
                Some(v) => spec.insert(field.into(), v.clone()),
                None => spec.remove(field),
            };
        }
    }
    let old_tol = old["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_tol = new["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let only_additions = old_tol.iter().all(|t| new_tol.contains(t));
    if let (true, Some(spec)) = (only_additions, allowed.as_object_mut()) {
        match new["spec"].get("tolerations") {
            Some(v) => spec.insert("tolerations".into(), v.clone()),
            None => spec.remove("tolerations"),
        };
    }
    if allowed != new["spec"] {
        out.push(Problem {
            field: "spec".into(),
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
        });
    }
}

fn decodes<'a, K: serde::Deserialize<'a>>(obj: &'a Value) -> Result<(), String> {
    K::deserialize(obj).map(drop).map_err(|e| e.to_string())
}

/// Whether `obj` has its kind's shape — every modelled field of the right JSON type — as
/// upstream's typed decoding demands; otherwise a 400 naming the mismatch. Everything after
/// this (defaulting, validation, controllers) may rely on the shape.
pub fn check_shape(r: &Resource, obj: &Value) -> Result<(), Box<Status>> {
    use crate::api::{apps, authorization, coordination, core, discovery, rbac, scheduling};
    let result = match (r.group, r.plural) {
        ("", "namespaces") => decodes::<core::Namespace>(obj),
        ("", "pods") => decodes::<core::Pod>(obj),
        ("", "nodes") => decodes::<core::Node>(obj),
        ("", "services") => decodes::<core::Service>(obj),
        ("", "endpoints") => decodes::<core::Endpoints>(obj),
        ("", "configmaps") => decodes::<core::ConfigMap>(obj),
        ("", "secrets") => decodes::<core::Secret>(obj),
        ("", "serviceaccounts") => decodes::<core::ServiceAccount>(obj),
        ("", "events") => decodes::<core::Event>(obj),
        ("apps", "deployments") => decodes::<apps::Deployment>(obj),
        ("apps", "replicasets") => decodes::<apps::ReplicaSet>(obj),
        ("apps", "daemonsets") => decodes::<apps::DaemonSet>(obj),
        ("coordination.k8s.io", "leases") => decodes::<coordination::Lease>(obj),
        ("discovery.k8s.io", "endpointslices") => decodes::<discovery::EndpointSlice>(obj),
        ("rbac.authorization.k8s.io", "roles") => decodes::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "clusterroles") => decodes::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "rolebindings") => decodes::<rbac::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            decodes::<rbac::ClusterRoleBinding>(obj)
        }
        ("scheduling.k8s.io", "priorityclasses") => decodes::<scheduling::PriorityClass>(obj),
        ("authorization.k8s.io", _) => decodes::<authorization::SelfSubjectAccessReview>(obj),
        _ => Ok(()),
    };
    result.map_err(|e| {
        let m = format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: {e}",
            kind = r.kind,
            v = r.version
        );
        Box::new(Status::bad_request(m))
    })
}

/// Checks an update: everything [`check`] does, and what may not change.
pub fn check_update(r: &Resource, new: &Value, old: &Value) -> Result<(), Box<Status>> {
    check_shape(r, new)?;
    let mut found = update_problems(r, new, old);
    match r.plural {
        // Upstream validates a class update by what may not change, plus its metadata.
        "priorityclasses" => metadata(&new["metadata"], &mut found),
        _ => found.extend(problems(r, new)),
    }
    report(r, new, found)
}

/// A 422 Status listing every problem, as upstream reports them.
pub fn check(r: &Resource, obj: &Value) -> Result<(), Box<Status>> {
    check_shape(r, obj)?;
    report(r, obj, problems(r, obj))
}

fn cause_reason(message: &str) -> &'static str {
    let prefixes = [
        ("Required value", "FieldValueRequired"),
        ("Forbidden", "FieldValueForbidden"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Too long", "FieldValueTooLong"),
    ];
    prefixes
        .iter()
        .find(|(p, _)| message.starts_with(p))
        .map_or("FieldValueInvalid", |(_, r)| r)
}

fn report(r: &Resource, obj: &Value, found: Vec<Problem>) -> Result<(), Box<Status>> {
    if found.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let summary: Vec<String> = found
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    let message = if summary.len() == 1 {
        format!("{} \"{name}\" is invalid: {}", r.kind, summary[0])
    } else {
        format!("{} \"{name}\" is invalid: [{}]", r.kind, summary.join(", "))
    };
    let mut s = Status::failure(422, "Invalid", message);
    s.details = Some(StatusDetails {
        name: name.into(),
        group: r.group.into(),
        kind: r.kind.into(),
        causes: found
            .into_iter()
            .map(|p| StatusCause {
                reason: cause_reason(&p.message).into(),
                message: p.message,
                field: p.field,
            })
            .collect(),
    });
    Err(Box::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;
    use serde_json::json;

    #[test]
    fn pods_need_named_containers_with_images() {
        let pods = resources::find("", "v1", "pods").unwrap();
        let ok = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
        assert!(check(pods, &ok).is_ok());
        let none = json!({"metadata": {"name": "p"}, "spec": {}});
        let err = check(pods, &none).unwrap_err();
        assert_eq!(
            err.message,
            "Pod \"p\" is invalid: spec.containers: Required value"
        );
        assert_eq!(err.code, 422);
        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "a", "image": "x"}]}});
        let fields: Vec<String> = problems(pods, &bad).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            ["spec.containers[0].image", "spec.containers[1].name"]
        );
    }

    #[test]
    fn workloads_need_a_selector_matching_their_template() {
        let d = resources::find("apps", "v1", "deployments").unwrap();
        let good = json!({"metadata": {"name": "w"}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "w"}},
            "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert!(check(d, &good).is_ok());
        let mut mismatch = good.clone();
        mismatch["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        let err = check(d, &mismatch).unwrap_err();
        assert!(
            err.message
                .contains("`selector` does not match template `labels`"),
            "{}",
            err.message
        );
        let mut no_selector = good.clone();
        no_selector["spec"]
            .as_object_mut()
            .unwrap()
            .remove("selector");
        assert!(problems(d, &no_selector)
            .iter()
            .any(|p| p.field == "spec.selector"));
        let cm = resources::find("", "v1", "configmaps").unwrap();
        assert!(check(cm, &json!({"metadata": {"name": "c"}})).is_ok());
    }

    #[test]
    fn selector_expressions_must_select_the_template_too() {
        let template = json!({"metadata": {"labels": {"app": "w", "track": "canary"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let workload = |selector: Value| {
            json!({"metadata": {"name": "w"},
                "spec": {"selector": selector, "template": template.clone()}})
        };
        let excludes = workload(json!({"matchLabels": {"app": "w"},
            "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]}));
        let includes = workload(json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["w", "v"]},
            {"key": "track", "operator": "Exists"}]}));
        let only_expressions = workload(json!({"matchExpressions": [
            {"key": "track", "operator": "DoesNotExist"}]}));
        for plural in ["deployments", "replicasets", "daemonsets"] {
            let r = resources::find("apps", "v1", plural).unwrap();
            assert!(check(r, &includes).is_ok(), "{plural}");
            for bad in [&excludes, &only_expressions] {
                let err = check(r, bad).unwrap_err();
                assert_eq!(err.code, 422);
                assert_eq!(
                    err.message,
                    format!(
                        "{} \"w\" is invalid: spec.template.metadata.labels: Invalid value: \
                         {{\"app\":\"w\",\"track\":\"canary\"}}: \
                         `selector` does not match template `labels`",
                        r.kind
                    )
                );
                let causes = err.details.unwrap().causes;
                assert_eq!(causes.len(), 1);
                assert_eq!(causes[0].field, "spec.template.metadata.labels");
                assert_eq!(causes[0].reason, "FieldValueInvalid");
            }
        }
        // A selector upstream cannot parse is itself invalid, whatever it would match.
        let rs = resources::find("apps", "v1", "replicasets").unwrap();
        for expression in [
            json!({"key": "app", "operator": "Like", "values": ["w"]}),
            json!({"key": "app", "operator": "In"}),
            json!({"key": "app", "operator": "Exists", "values": ["w"]}),
        ] {
            let odd = workload(json!({"matchExpressions": [expression]}));
            let fields: Vec<String> = problems(rs, &odd).into_iter().map(|p| p.field).collect();
            assert_eq!(fields, ["spec.selector"], "{odd}");
        }
    }

    #[test]
    fn labels_services_and_config_keys_are_checked() {
        let cm = resources::find("", "v1", "configmaps").unwrap();
        let bad = json!({"metadata": {"name": "c", "labels": {"bad key!": "x", "ok": "bad value!"}},
            "data": {"a/b": "1"}});
        let fields: Vec<String> = problems(cm, &bad).into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["metadata.labels", "metadata.labels", "data[a/b]"]);
        let svc = resources::find("", "v1", "services").unwrap();
        let s =
            json!({"metadata": {"name": "s"}, "spec": {"type": "Magic", "ports": [{"port": 0}]}});
        let err = check(svc, &s).unwrap_err();
        let causes: Vec<String> = err
            .details
            .unwrap()
            .causes
            .into_iter()
            .map(|c| c.reason)
            .collect();
        assert_eq!(causes, ["FieldValueNotSupported", "FieldValueInvalid"]);
    }

    #[test]
    fn objects_of_the_wrong_shape_are_refused_before_anything_reads_them() {
        let ns = resources::find("", "v1", "namespaces").unwrap();
        let err = check(ns, &json!({"metadata": {"name": "odd"}, "spec": 5})).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Namespace in version \"v1\" cannot be handled"),
            "{}",
            err.message
        );
        let pods = resources::find("", "v1", "pods").unwrap();
        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}], "initContainers": [1]}});
        assert_eq!(check(pods, &bad).unwrap_err().code, 400);
        // A malformed stored pod (from before the shape check) does not panic an update.
        let stored = json!({"spec": {"containers": [1], "initContainers": [1]}});
        assert!(update_problems(pods, &stored, &stored).is_empty());
        let mut changed = stored.clone();
        changed["spec"]["containers"] = json!([2]);
        assert_eq!(update_problems(pods, &changed, &stored).len(), 1);
    }

    #[test]
    fn priority_classes_follow_upstreams_rules() {
        let pcs = resources::find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let pc = |name: &str, value: i64| json!({"metadata": {"name": name}, "value": value, "preemptionPolicy": "PreemptLowerPriority"});
        assert!(check(pcs, &pc("high", 1_000_000_000)).is_ok());
        assert!(check(pcs, &pc("low", -2_147_483_648)).is_ok());
        let err = check(pcs, &pc("higher", 1_000_000_001)).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(err.message, "PriorityClass \"higher\" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000");
        assert_eq!(err.details.unwrap().causes[0].reason, "FieldValueForbidden");
        // `system-` names are the system classes' alone, with their values.
        assert!(check(pcs, &pc("system-node-critical", 2_000_001_000)).is_ok());
        let err = check(pcs, &pc("system-mine", 5)).unwrap_err();
        assert_eq!(err.message, "PriorityClass \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class");
        let wrong = problems(pcs, &pc("system-cluster-critical", 5));
        assert!(
            wrong[0].message.ends_with(
                "error: value of system-cluster-critical PriorityClass must be 2000000000"
            ),
            "{wrong:?}"
        );
        let mut default = pc("system-cluster-critical", 2_000_000_000);
        default["globalDefault"] = json!(true);
        assert!(problems(pcs, &default)[0]
            .message
            .ends_with("globalDefault of system-cluster-critical PriorityClass must be false"));
        // The preemption policy is one of two.
        let mut odd = pc("odd", 1);
        odd["preemptionPolicy"] = json!("Sometimes");
        assert_eq!(problems(pcs, &odd)[0].message, "Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"");
        odd["preemptionPolicy"] = json!("");
        assert_eq!(problems(pcs, &odd)[0].message, "Required value");
        // The wrong type is a 400, as upstream's decoding refuses it.
        assert_eq!(
            check(pcs, &json!({"metadata": {"name": "s"}, "value": "1"}))
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(check(pcs, &pc("big", 3_000_000_000)).unwrap_err().code, 400);
    }

    #[test]
    fn a_priority_class_keeps_its_value_and_policy() {
        let pcs = resources::find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let old = json!({"metadata": {"name": "high"}, "value": 10, "preemptionPolicy": "Never"});
        let mut described = old.clone();
        described["description"] = json!("now documented");
        described["globalDefault"] = json!(true);
        assert!(check_update(pcs, &described, &old).is_ok());
        let mut revalued = old.clone();
        revalued["value"] = json!(11);
        let err = check_update(pcs, &revalued, &old).unwrap_err();
        assert_eq!(
            err.message,
            "PriorityClass \"high\" is invalid: value: Forbidden: may not be changed in an update."
        );
        let mut repolicied = old.clone();
        repolicied["preemptionPolicy"] = json!("PreemptLowerPriority");
        let err = check_update(pcs, &repolicied, &old).unwrap_err();
        assert_eq!(err.message, "PriorityClass \"high\" is invalid: preemptionPolicy: Invalid value: \"PreemptLowerPriority\": field is immutable");
        // As upstream, an update is not held to the create-time reserved-name rule.
        let sys = json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000, "preemptionPolicy": "PreemptLowerPriority"});
        let mut sys_default = sys.clone();
        sys_default["globalDefault"] = json!(true);
        assert!(check_update(pcs, &sys_default, &sys).is_ok());
        // A pod's priority fields are part of its fixed spec.
        let pods = resources::find("", "v1", "pods").unwrap();
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "i"}], "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority"}});
        for (field, value) in [
            ("priority", json!(5)),
            ("priorityClassName", json!("high")),
            ("preemptionPolicy", json!("Never")),
        ] {
            let mut changed = pod.clone();
            changed["spec"][field] = value;
            assert_eq!(update_problems(pods, &changed, &pod).len(), 1, "{field}");
        }
    }

    #[test]
    fn immutable_fields_cannot_change() {
        let d = resources::find("apps", "v1", "deployments").unwrap();
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}});
        let new = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        assert_eq!(update_problems(d, &new, &old)[0].field, "spec.selector");
        assert!(update_problems(d, &old, &old).is_empty());
        let pods = resources::find("", "v1", "pods").unwrap();
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a:1"}],
            "tolerations": [{"key": "k", "operator": "Exists"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("a:2");
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "j", "operator": "Exists"}));
        new["spec"]["activeDeadlineSeconds"] = json!(5);
        assert!(update_problems(pods, &new, &old).is_empty());
        let mut moved = old.clone();
        moved["spec"]["nodeName"] = json!("n2");
        let p = update_problems(pods, &moved, &old);
        assert!(p[0]
            .message
            .starts_with("Forbidden: pod updates may not change"));
        let mut dropped = old.clone();
        dropped["spec"]["tolerations"] = json!([]);
        assert_eq!(update_problems(pods, &dropped, &old).len(), 1);
        let cm = resources::find("", "v1", "configmaps").unwrap();
        let frozen = json!({"immutable": true, "data": {"a": "1"}});
        let changed = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(update_problems(cm, &changed, &frozen)[0].field, "data");
    }
}
