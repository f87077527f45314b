//! Per-kind validation of the fields the rest of the cluster relies on, with upstream's field
//! paths and wording (`Pod "p" is invalid: spec.containers: Required value`). It is not
//! upstream's full validation; it rejects what would break a controller, the scheduler or the
//! kubelet.

use serde_json::Value;

use super::resources::Resource;
use crate::api::meta::dns_label_problem;
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
    let selector = spec["selector"]["matchLabels"].as_object();
    let has_expressions = spec["selector"]["matchExpressions"]
        .as_array()
        .is_some_and(|e| !e.is_empty());
    if selector.is_none_or(|s| s.is_empty()) && !has_expressions {
        out.push(required("spec.selector"));
    }
    if let Some(sel) = selector {
        let labels = spec["template"]["metadata"]["labels"].as_object();
        let matches = sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !matches {
            out.push(invalid(
                "spec.template.metadata.labels",
                &spec["template"]["metadata"]["labels"],
                "`selector` does not match template `labels`",
            ));
        }
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

/// The problems of `obj` as a `r` (empty when it is acceptable).
pub fn problems(r: &Resource, obj: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    match r.plural {
        "pods" => containers(&obj["spec"], "spec", &mut out),
        "deployments" | "replicasets" => pod_template_owner(obj, &mut out),
        "daemonsets" => {
            pod_template_owner(obj, &mut out);
            out.retain(|p| p.field != "spec.replicas");
        }
        _ => {}
    }
    out
}

/// A 422 Status listing every problem, as upstream reports them.
pub fn check(r: &Resource, obj: &Value) -> Result<(), Box<Status>> {
    let found = problems(r, obj);
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
                reason: if p.message == "Required value" {
                    "FieldValueRequired"
                } else {
                    "FieldValueInvalid"
                }
                .into(),
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
}
