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
}
