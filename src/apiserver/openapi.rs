//! `/openapi/v3`: an index of group versions and, per group version, a document whose
//! operations name their object kind (`x-kubernetes-group-version-kind`) and accept
//! `fieldValidation`. That is what kubectl checks before `create -f`, `replace` and `apply`
//! (it then leaves validation to the server). The documents carry no schemas yet.

use serde_json::{json, Map, Value};

use super::resources::{Resource, RESOURCES};

/// The group versions served, as OpenAPI v3 names them (`api/v1`, `apis/apps/v1`).
fn group_versions() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        let name = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        if !out.iter().any(|(n, _, _)| *n == name) {
            out.push((name, r.group, r.version));
        }
    }
    out
}

/// `GET /openapi/v3`.
pub fn root() -> Value {
    let mut paths = Map::new();
    for (name, _, _) in group_versions() {
        let url = format!("/openapi/v3/{name}?hash={}", DOC_HASH);
        paths.insert(name, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// Version tag of the documents (they change only with the binary).
const DOC_HASH: &str = "rkube-v1";

fn operation(r: &Resource, verb: &str) -> Value {
    json!({
        "operationId": format!("{verb}{}", r.kind),
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
        ],
        "responses": {"200": {"description": "OK"}}
    })
}

fn paths_of(r: &Resource) -> [(String, Value); 2] {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let scope = if r.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{base}{scope}/{}", r.plural);
    let object = format!("{collection}/{{name}}");
    [
        (
            collection,
            json!({"get": operation(r, "list"), "post": operation(r, "post")}),
        ),
        (
            object,
            json!({
                "get": operation(r, "get"),
                "put": operation(r, "put"),
                "patch": operation(r, "patch"),
                "delete": operation(r, "delete"),
            }),
        ),
    ]
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        for (path, ops) in paths_of(r) {
            paths.insert(path, ops);
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_index_and_describe_operations() {
        let root = root();
        assert!(root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
        assert!(root["paths"].get("apis/apps/v1").is_some());
        let apps = group_version("apps", "v1").unwrap();
        let op = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let core = group_version("", "v1").unwrap();
        assert!(core["paths"].get("/api/v1/namespaces/{name}").is_some());
        assert!(group_version("apps", "v9").is_none());
    }
}
