//! `/version` and API discovery in the legacy form (`/api`, `/apis`, `/api/v1`,
//! `/apis/<group>/<version>`), which kubectl and the Python client read before anything else.

use serde_json::{json, Value};

use super::resources::{self, RESOURCES};

/// The Kubernetes version reported; kubectl's dispatcher picks its build by the minor.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "32";

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-rkube"),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch(std::env::consts::ARCH)),
    })
}

/// Go's names for CPU architectures, which clients expect in `platform`.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// `GET /apis`.
pub fn groups() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `/apis/<group>/<version>`; `None` if that group version is not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut served: Vec<Value> = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        served.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
            "categories": r.categories(),
        }));
        let sub_verbs = ["get", "patch", "update"];
        if r.has_status() {
            served.push(
                json!({"name": format!("{}/status", r.plural), "singularName": "",
                "namespaced": r.namespaced, "kind": r.kind, "verbs": sub_verbs}),
            );
        }
        if r.plural == "serviceaccounts" {
            served.push(json!({"name": "serviceaccounts/token", "singularName": "",
                "namespaced": true, "group": "authentication.k8s.io", "version": "v1",
                "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if r.plural == "namespaces" {
            served.push(json!({"name": "namespaces/finalize", "singularName": "",
                "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
        if r.plural == "pods" {
            served.push(json!({"name": "pods/log", "singularName": "",
                "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
            for (sub, kind) in [("binding", "Binding"), ("eviction", "Eviction")] {
                served.push(json!({"name": format!("pods/{sub}"), "singularName": "",
                    "namespaced": true, "kind": kind, "verbs": ["create"]}));
            }
        }
        if r.has_scale() {
            served.push(
                json!({"name": format!("{}/scale", r.plural), "singularName": "",
                "namespaced": r.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": sub_verbs}),
            );
        }
    }
    if served.is_empty() {
        return None;
    }
    if group.is_empty() {
        served.push(
            json!({"name": "bindings", "singularName": "binding", "namespaced": true,
            "kind": "Binding", "verbs": ["create"]}),
        );
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": served,
    }))
}

/// The media type of aggregated discovery.
pub const AGGREGATED_MEDIA_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (`apidiscovery.k8s.io/v2`).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        ["g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"]
            .iter()
            .all(|p| params.contains(p))
    })
}

/// One group's entry of aggregated discovery, built from its legacy resource list: entries
/// named `plural/sub` become subresources of `plural`.
fn aggregated_group(group: &str) -> Option<Value> {
    let list = resource_list(group, "v1")?;
    let entries = list["resources"].as_array()?;
    let kind_of = |e: &Value| {
        json!({
            "group": e.get("group").and_then(Value::as_str).unwrap_or(group),
            "version": e.get("version").and_then(Value::as_str).unwrap_or("v1"),
            "kind": e["kind"],
        })
    };
    let mut out = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !e["name"].as_str().unwrap_or("").contains('/'))
    {
        let plural = e["name"].as_str().unwrap_or("");
        let prefix = format!("{plural}/");
        let subs: Vec<Value> = entries
            .iter()
            .filter_map(|s| {
                let sub = s["name"].as_str()?.strip_prefix(&prefix)?;
                Some(json!({"subresource": sub, "responseKind": kind_of(s), "verbs": s["verbs"]}))
            })
            .collect();
        let scope = if e["namespaced"] == true {
            "Namespaced"
        } else {
            "Cluster"
        };
        let mut r = json!({
            "resource": plural,
            "responseKind": kind_of(e),
            "scope": scope,
            "singularResource": e["singularName"],
            "verbs": e["verbs"],
        });
        for key in ["shortNames", "categories"] {
            if e[key].as_array().is_some_and(|a| !a.is_empty()) {
                r[key] = e[key].clone();
            }
        }
        if !subs.is_empty() {
            r["subresources"] = Value::Array(subs);
        }
        out.push(r);
    }
    let mut meta = json!({"creationTimestamp": null});
    if !group.is_empty() {
        meta["name"] = Value::String(group.to_string());
    }
    Some(json!({
        "metadata": meta,
        "versions": [{"version": "v1", "resources": out, "freshness": "Current"}],
    }))
}

/// `GET /api` (`core`) or `/apis` in the aggregated form kubectl asks for first: every
/// group's resources in one answer.
pub fn aggregated(core: bool) -> Value {
    let groups: Vec<&str> = if core { vec![""] } else { resources::groups() };
    let items: Vec<Value> = groups.into_iter().filter_map(aggregated_group).collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_what_is_served() {
        let core = resource_list("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods") && names.contains(&"namespaces"));
        for sub in [
            "pods/status",
            "pods/binding",
            "pods/eviction",
            "bindings",
            "nodes/status",
        ] {
            assert!(names.contains(&sub), "{sub} missing");
        }
        let apps = resource_list("apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("deployments/scale");
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(resource_list("apps", "v2").is_none());
        assert_eq!(groups()["groups"][0]["name"], "apps");
        assert_eq!(version()["minor"], KUBE_MINOR);
    }

    #[test]
    fn aggregated_discovery_nests_subresources() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(kubectl));
        assert!(!wants_aggregated("application/json"));
        let core = aggregated(true);
        let res = &core["items"][0]["versions"][0]["resources"];
        let pods = res
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        let subs: Vec<&str> = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["subresource"].as_str().unwrap())
            .collect();
        assert!(
            subs.contains(&"status") && subs.contains(&"binding"),
            "{subs:?}"
        );
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let apis = aggregated(false);
        let apps = &apis["items"][0];
        assert_eq!(apps["metadata"]["name"], "apps");
        let deploy = &apps["versions"][0]["resources"][0];
        assert_eq!(deploy["resource"], "deployments");
        let scale = deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(scale["responseKind"]["group"], "autoscaling");
    }
}
