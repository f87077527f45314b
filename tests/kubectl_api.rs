//! The API server with the real kubectl (1.32): a store member, `rkube apiserver` on it, and
//! kubectl creating, reading, replacing and deleting objects, with Kubernetes' errors.

#![cfg(not(madsim))]

mod common;

use std::path::Path;
use std::process::Child;

use common::apiserver::{continue_token, output_text, stop, store_and_api_server, ApiServer};
use common::wait_until;
use serde_json::Value;

const NAMESPACE: &str = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}"#;

fn config_map(name: &str, value: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: team-a\n{extra_meta}data:\n  key: \"{value}\"\n"
    )
}

#[test]
fn kubectl_creates_reads_replaces_and_deletes() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };

    let (ok, text) = api.with_manifest("create", NAMESPACE);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "namespace/team-a created");
    let ns = api.json(&["get", "namespace", "team-a"]);
    assert_eq!(ns["status"]["phase"], "Active");

    let (ok, text) = api.with_manifest("create", &config_map("cfg", "1", ""));
    assert!(ok, "{text}");
    let cm = api.json(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert_eq!(cm["data"]["key"], "1");
    assert_eq!(cm["metadata"]["namespace"], "team-a");
    assert_eq!(cm["metadata"]["uid"].as_str().map(str::len), Some(36));
    let rv1: i64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("resourceVersion is a revision");
    assert!(cm["metadata"]["creationTimestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // Server-side dry runs validate and answer but change nothing.
    let dry = ["create", "-f", "-", "--dry-run=server", "--validate=false"];
    let out = api.kubectl_stdin(&dry, Some(&config_map("dry", "1", "")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("(server dry run)"),
        "{text}"
    );
    assert!(api
        .fails(&["get", "configmap", "dry", "-n", "team-a"])
        .contains("not found"));
    let out = api.ok(&[
        "delete",
        "configmap",
        "cfg",
        "-n",
        "team-a",
        "--dry-run=server",
    ]);
    assert!(out.contains("(server dry run)"), "{out}");
    api.ok(&["get", "configmap", "cfg", "-n", "team-a"]);

    // Kubernetes' error texts, as kubectl prints them.
    let (ok, text) = api.with_manifest("create", &config_map("cfg", "1", ""));
    assert!(!ok);
    assert!(
        text.contains(r#"configmaps "cfg" already exists"#),
        "{text}"
    );
    let err = api.fails(&["get", "configmap", "nope", "-n", "team-a"]);
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "nope" not found"#),
        "{err}"
    );

    // Replace: a stale resourceVersion is a conflict; the current one succeeds.
    let stale = config_map("cfg", "2", "  resourceVersion: \"1\"\n");
    let (ok, text) = api.with_manifest("replace", &stale);
    assert!(!ok);
    assert!(text.contains("the object has been modified"), "{text}");
    let current = config_map("cfg", "2", &format!("  resourceVersion: \"{rv1}\"\n"));
    let (ok, text) = api.with_manifest("replace", &current);
    assert!(ok, "{text}");
    let cm = api.json(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert_eq!(cm["data"]["key"], "2");
    let rv2: i64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);

    // The namespace must exist; names must be valid.
    let ghost = config_map("x", "1", "").replace("team-a", "ghost");
    let (ok, text) = api.with_manifest("create", &ghost);
    assert!(!ok);
    assert!(text.contains(r#"namespaces "ghost" not found"#), "{text}");
    let (ok, text) = api.with_manifest("create", &config_map("Bad_Name", "1", ""));
    assert!(!ok);
    assert!(text.contains("is invalid"), "{text}");

    // Lists, across namespaces and in a named API group.
    let names = api.ok(&["get", "configmaps", "-A", "-o", "name"]);
    assert_eq!(names.trim(), "configmap/cfg");
    let deploy = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"team-a"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    let (ok, text) = api.with_manifest("create", deploy);
    assert!(ok, "{text}");
    assert_eq!(
        api.ok(&["get", "deploy", "-n", "team-a", "-o", "name"])
            .trim(),
        "deployment.apps/web"
    );

    // Delete.
    assert!(api
        .ok(&["delete", "configmap", "cfg", "-n", "team-a"])
        .contains("deleted"));
    let err = api.fails(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn generate_name_and_list_resource_version() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    assert!(api.with_manifest("create", NAMESPACE).0);
    let manifest = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"job-","namespace":"team-a"}}"#;
    for _ in 0..2 {
        let (ok, text) = api.with_manifest("create", manifest);
        assert!(ok, "{text}");
    }
    let list = api.json(&["get", "configmaps", "-n", "team-a"]);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for item in items {
        let name = item["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("job-") && name.len() == "job-".len() + 5,
            "{name}"
        );
    }
    assert_ne!(items[0]["metadata"]["name"], items[1]["metadata"]["name"]);

    // Label and field selectors.
    let labeled = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web-cfg","namespace":"team-a","labels":{"app":"web"}}}"#;
    assert!(api.with_manifest("create", labeled).0);
    let get = |extra: &[&str]| {
        let mut args = vec!["get", "configmaps", "-n", "team-a", "-o", "name"];
        args.extend(extra);
        api.ok(&args)
    };
    assert_eq!(get(&["-l", "app=web"]).trim(), "configmap/web-cfg");
    assert_eq!(get(&["-l", "app notin (web)"]).lines().count(), 2);
    assert_eq!(get(&["-l", "!app"]).lines().count(), 2);
    let by_name = get(&["--field-selector", "metadata.name=web-cfg"]);
    assert_eq!(by_name.trim(), "configmap/web-cfg");
    let err = api.fails(&[
        "get",
        "cm",
        "-n",
        "team-a",
        "--field-selector",
        "spec.nodeName=x",
    ]);
    assert!(
        err.contains("field label not supported: spec.nodeName"),
        "{err}"
    );

    // Pagination: kubectl follows continue tokens; every page is read at one revision.
    assert_eq!(get(&["--chunk-size=1"]).lines().count(), 3);
    let page = |q: &str| -> Value {
        let path = format!("/api/v1/namespaces/team-a/configmaps?limit=2{q}");
        serde_json::from_str(&api.ok(&["get", "--raw", &path])).expect("list JSON")
    };
    let first = page("");
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let second = page(&format!("&continue={token}"));
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["metadata"].get("continue").is_none());
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let err = api.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/team-a/configmaps?limit=1&continue=zz",
    ]);
    assert!(
        err.contains("BadRequest") || err.contains("invalid continue"),
        "{err}"
    );
}

#[test]
fn watches_stream_changes_and_expire_after_compaction() {
    let Some((store, mut api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    assert!(api.with_manifest("create", NAMESPACE).0);
    let cm = |name: &str, app: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"team-a","labels":{{"app":"{app}"}}}},"data":{{"v":"1"}}}}"#
        )
    };
    assert!(api.with_manifest("create", &cm("before", "web")).0);
    let watch = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "get",
            "cm",
            "-n",
            "team-a",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ];
        args.extend(extra);
        let out = store.dir().join(name);
        (api.kubectl_background(8, &args, &out), out)
    };
    let (all, all_out) = watch("watch-all.out", &[]);
    let (web, web_out) = watch("watch-web.out", &["-l", "app=web"]);
    // Both watches list first (the synthetic ADDED of "before"): wait until both printed it.
    wait_until(20, "both watches started", || {
        [&all_out, &web_out]
            .iter()
            .all(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"before\"")))
    });
    assert!(api.with_manifest("create", &cm("other", "db")).0);
    let (ok, text) = api.with_manifest("replace", &cm("before", "db"));
    assert!(ok, "{text}");
    assert!(api
        .ok(&["delete", "cm", "other", "-n", "team-a"])
        .contains("deleted"));

    let events = |mut child: Child, out: &Path| -> Vec<(String, String)> {
        child.wait().expect("kubectl ends at its timeout");
        std::fs::read_to_string(out)
            .expect("kubectl output")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                let name = e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (e["type"].as_str().unwrap_or("").to_string(), name)
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        events(all, &all_out),
        pairs(&[
            ("ADDED", "before"),
            ("ADDED", "other"),
            ("MODIFIED", "before"),
            ("DELETED", "other")
        ])
    );
    // With a selector, "before" leaving app=web is a DELETED; "other" never matched.
    assert_eq!(
        events(web, &web_out),
        pairs(&[("ADDED", "before"), ("DELETED", "before")])
    );

    // A continue token from before a compaction: 410 Expired. Pages after the first are read
    // from the store at the first page's revision, so this is the store's compaction at work
    // (the watch below is refused by the restarted API server's cache window).
    for name in ["page-1", "page-2"] {
        assert!(api.with_manifest("create", &cm(name, "page")).0);
    }
    let page = api.raw_json("/api/v1/namespaces/team-a/configmaps?limit=1");
    let token = continue_token(&page);
    let continued = format!("/api/v1/namespaces/team-a/configmaps?limit=1&continue={token}");
    // Before the compaction the next page is served, at the first page's revision.
    let next = api.raw_json(&continued);
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1), "{next}");
    assert_eq!(
        next["metadata"]["resourceVersion"], page["metadata"]["resourceVersion"],
        "{next}"
    );
    // A write after the list, so that compacting at the current revision removes the list's.
    assert!(api.with_manifest("create", &cm("after-list", "page")).0);
    let rev = store.member(0).revision();
    let list_rev: i64 = page["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a numeric resourceVersion: {page}"));
    assert!(rev > list_rev, "{rev} > {list_rev}");
    store.member(0).ok(&["compaction", &rev.to_string()]);
    let resp = api.raw_get(&continued);
    assert!(
        resp.starts_with("HTTP/1.1 410") && resp.contains("Expired"),
        "{resp}"
    );

    // A watch from before the compaction ends with a 410 Expired error event once the
    // revision is older than the watch cache's window, which starts at the cache's first list
    // (at start-up): an API server started after the compaction lists after it.
    api.kill();
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    let resp = api.raw_get(
        "/api/v1/namespaces/team-a/configmaps?watch=true&resourceVersion=2&timeoutSeconds=5",
    );
    assert!(
        resp.contains(r#""type":"ERROR""#) && resp.contains(r#""code":410"#),
        "{resp}"
    );
    assert!(resp.contains("Expired"), "{resp}");
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
        env: [{name: A, value: \"1\"}]
      - name: side
        image: busybox:1
";

#[test]
fn apply_with_validation_and_every_patch_type() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    // `kubectl apply` with validation on (it needs /openapi/v3), creating then configuring.
    let apply = |manifest: &str| {
        let out = api.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "apply failed: {err}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(apply(NAMESPACE), "namespace/team-a created");
    assert_eq!(apply(DEPLOYMENT), "deployment.apps/web created");
    // Server-side printing: upstream's columns, and `get all` through the `all` category.
    let table = api.ok(&["get", "deploy", "-n", "team-a"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("web") && l.contains("0/2")),
        "{table}"
    );
    assert!(api
        .ok(&["get", "all", "-n", "team-a"])
        .contains("deployment.apps/web"));
    let changed = DEPLOYMENT
        .replace("nginx:1", "nginx:2")
        .replace("replicas: 2", "replicas: 3")
        .replace("      - name: side\n        image: busybox:1\n", "");
    assert_eq!(apply(&changed), "deployment.apps/web configured");
    let d = api.json(&["get", "deploy", "web", "-n", "team-a"]);
    assert_eq!(d["spec"]["replicas"], 3);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        containers.len(),
        1,
        "the strategic merge removed the dropped container"
    );
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(containers[0]["env"][0]["value"], "1");
    assert_eq!(d["metadata"]["generation"], 2);
    let last = "kubectl.kubernetes.io/last-applied-configuration";
    assert!(d["metadata"]["annotations"][last]
        .as_str()
        .is_some_and(|a| a.contains("nginx:2")));

    // Merge and JSON patches; label changes do not bump the generation.
    let patch = |kind: &str, p: &str| {
        api.ok(&[
            "patch", "deploy", "web", "-n", "team-a", "--type", kind, "-p", p,
        ])
    };
    assert!(patch("merge", r#"{"spec":{"replicas":5}}"#).contains("patched"));
    assert!(patch(
        "json",
        r#"[{"op":"replace","path":"/spec/replicas","value":6}]"#
    )
    .contains("patched"));
    assert!(api
        .ok(&["label", "deploy", "web", "-n", "team-a", "tier=front"])
        .contains("labeled"));
    let d = api.json(&["get", "deploy", "web", "-n", "team-a"]);
    assert_eq!(d["spec"]["replicas"], 6);
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["generation"], 4);
    let err = api.fails(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "team-a",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
    ]);
    assert!(err.contains("test operation failed"), "{err}");
    // The scale and status subresources: scaling is a spec change, status is not, and the
    // main endpoint ignores status.
    assert!(api
        .ok(&["scale", "deploy", "web", "-n", "team-a", "--replicas=2"])
        .contains("scaled"));
    let status = r#"{"status":{"replicas":2,"readyReplicas":1}}"#;
    let sub = [
        "patch",
        "deploy",
        "web",
        "-n",
        "team-a",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ];
    assert!(api.ok(&sub).contains("patched"));
    patch("merge", r#"{"status":{"replicas":99}}"#);
    let d = api.json(&["get", "deploy", "web", "-n", "team-a"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["status"],
        serde_json::json!({"replicas": 2, "readyReplicas": 1})
    );
    assert_eq!(d["metadata"]["generation"], 5);
    let scale = api.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/team-a/deployments/web/scale",
    ]);
    let scale: Value = serde_json::from_str(&scale).expect("Scale JSON");
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(2))
    );
    assert_eq!(scale["status"]["selector"], "app=web");

    let err = api.fails(&[
        "patch", "deploy", "nope", "-n", "team-a", "--type", "merge", "-p", "{}",
    ]);
    assert!(
        err.contains(r#"deployments.apps "nope" not found"#),
        "{err}"
    );
}

#[test]
fn finalizers_and_graceful_pod_deletion() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    assert!(api.with_manifest("create", NAMESPACE).0);
    let kept = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept","namespace":"team-a","finalizers":["example.com/hold"]}}"#;
    assert!(api.with_manifest("create", kept).0);
    assert!(api
        .ok(&["delete", "cm", "kept", "-n", "team-a", "--wait=false"])
        .contains("deleted"));
    let cm = api.json(&["get", "cm", "kept", "-n", "team-a"]);
    assert!(
        cm["metadata"]["deletionTimestamp"].is_string(),
        "marked, not removed: {cm}"
    );
    let release = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;
    api.ok(&[
        "patch",
        "cm",
        "kept",
        "-n",
        "team-a",
        "--type=json",
        "-p",
        release,
    ]);
    let err = api.fails(&["get", "cm", "kept", "-n", "team-a"]);
    assert!(
        err.contains("not found"),
        "the last finalizer's removal deletes it: {err}"
    );

    // A pod bound to a node gets its grace period; grace 0 removes it at once.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team-a"},"spec":{"nodeName":"n1","terminationGracePeriodSeconds":20,"containers":[{"name":"c","image":"busybox"}]}}"#;
    assert!(api.with_manifest("create", pod).0);
    api.ok(&["delete", "pod", "p", "-n", "team-a", "--wait=false"]);
    let p = api.json(&["get", "pod", "p", "-n", "team-a"]);
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 20);
    api.ok(&[
        "delete",
        "pod",
        "p",
        "-n",
        "team-a",
        "--grace-period=0",
        "--force",
    ]);
    assert!(api
        .fails(&["get", "pod", "p", "-n", "team-a"])
        .contains("not found"));

    // Per-kind validation with upstream's wording.
    let no_image = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad","namespace":"team-a"},"spec":{"containers":[{"name":"c"}]}}"#;
    let (ok, text) = api.with_manifest("create", no_image);
    assert!(!ok);
    assert!(
        text.contains(r#"Pod "bad" is invalid: spec.containers[0].image: Required value"#),
        "{text}"
    );

    // YAML bodies are accepted wherever JSON is; other media types get a 415.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n";
    let resp = api.raw_typed(
        "POST",
        "/api/v1/namespaces/team-a/configmaps",
        "application/yaml",
        yaml,
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    assert_eq!(
        api.json(&["get", "cm", "from-yaml", "-n", "team-a"])["data"]["k"],
        "v"
    );
    let resp = api.raw_typed(
        "POST",
        "/api/v1/namespaces/team-a/configmaps",
        "text/plain",
        "x",
    );
    assert!(resp.starts_with("HTTP/1.1 415"), "{resp}");

    // Binding (what the scheduler writes) assigns a pod once; eviction deletes it.
    let unbound = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q","namespace":"team-a"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    assert!(api.with_manifest("create", unbound).0);
    let binding = |node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"q","namespace":"team-a"}},"target":{{"kind":"Node","name":"{node}"}}}}"#
        )
    };
    let (ok, text) = api.with_manifest("create", &binding("n1"));
    assert!(ok, "{text}");
    let q = api.json(&["get", "pod", "q", "-n", "team-a"]);
    assert_eq!(q["spec"]["nodeName"], "n1");
    assert_eq!(q["status"]["conditions"][0]["type"], "PodScheduled");
    let resp = api.raw(
        "POST",
        "/api/v1/namespaces/team-a/pods/q/binding",
        &binding("n2"),
    );
    assert!(
        resp.contains(" 409 ") && resp.contains("already assigned"),
        "{resp}"
    );
    let eviction = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"q","namespace":"team-a"},"deleteOptions":{"gracePeriodSeconds":0}}"#;
    let resp = api.raw(
        "POST",
        "/api/v1/namespaces/team-a/pods/q/eviction",
        eviction,
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    assert!(api
        .fails(&["get", "pod", "q", "-n", "team-a"])
        .contains("not found"));
}

#[test]
fn defaults_admission_and_namespace_lifecycle() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };

    // The namespaces every cluster has.
    wait_until(20, "the built-in namespaces exist", || {
        let names = api.ok(&["get", "namespaces", "-o", "name"]);
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .all(|n| names.contains(&format!("namespace/{n}\n")))
    });
    let err = api.fails(&["delete", "namespace", "kube-system"]);
    assert!(err.contains("this namespace may not be deleted"), "{err}");

    // Pod defaults and admission: service account, tolerations, status, QoS.
    assert!(api.with_manifest("create", NAMESPACE).0);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team-a"},"spec":{"containers":[{"name":"c","image":"nginx","ports":[{"containerPort":80}]}]}}"#;
    let (ok, text) = api.with_manifest("create", pod);
    assert!(ok, "{text}");
    let p = api.json(&["get", "pod", "p", "-n", "team-a"]);
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(p["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    let tolerations = p["spec"]["tolerations"].as_array().expect("tolerations");
    assert_eq!(tolerations.len(), 2, "{tolerations:?}");
    assert!(tolerations.iter().all(|t| t["tolerationSeconds"] == 300));
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    // A pod's spec is fixed after creation except for images and a few fields.
    let moved = r#"{"spec":{"nodeName":"elsewhere"}}"#;
    let err = api.fails(&["patch", "pod", "p", "-n", "team-a", "-p", moved]);
    assert!(
        err.contains("pod updates may not change fields other than"),
        "{err}"
    );
    let image = r#"{"spec":{"containers":[{"name":"c","image":"nginx:1.27"}]}}"#;
    api.ok(&["patch", "pod", "p", "-n", "team-a", "-p", image]);

    // Workload defaults, immutable selector, generation only on spec changes.
    let deploy = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"team-a"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    assert!(api.with_manifest("create", deploy).0);
    let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["metadata"]["generation"], 1);
    api.ok(&["label", "deployment", "web", "-n", "team-a", "tier=front"]);
    let generation = |api: &ApiServer| {
        let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
        d["metadata"]["generation"].as_i64()
    };
    assert_eq!(generation(&api), Some(1), "labels are not spec");
    api.ok(&["scale", "deployment", "web", "-n", "team-a", "--replicas=3"]);
    assert_eq!(generation(&api), Some(2));
    let selector = r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#;
    let err = api.fails(&["patch", "deployment", "web", "-n", "team-a", "-p", selector]);
    assert!(
        err.contains("spec.selector") && err.contains("field is immutable"),
        "{err}"
    );

    // Label syntax.
    let bad = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad","namespace":"team-a","labels":{"ok":"bad value!"}}}"#;
    let (ok, text) = api.with_manifest("create", bad);
    assert!(
        !ok && text.contains("metadata.labels: Invalid value"),
        "{text}"
    );

    // Namespace deletion: Terminating until the namespace controller finalizes it; nothing
    // new may be created meanwhile.
    api.ok(&["delete", "namespace", "team-a", "--wait=false"]);
    let ns = api.json(&["get", "namespace", "team-a"]);
    assert_eq!(ns["status"]["phase"], "Terminating");
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late","namespace":"team-a"}}"#;
    let (ok, text) = api.with_manifest("create", cm);
    assert!(
        !ok && text.contains("because it is being terminated"),
        "{text}"
    );
    let finalize = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{"finalizers":[]}}"#;
    let resp = api.raw("PUT", "/api/v1/namespaces/team-a/finalize", finalize);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let err = api.fails(&["get", "namespace", "team-a"]);
    assert!(err.contains("not found"), "{err}");
}

/// A pod in team-a, with `spec` fields given as JSON.
fn pod_manifest(name: &str, spec_fields: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"team-a"}},"spec":{{{spec_fields}"containers":[{{"name":"c","image":"nginx"}}]}}}}"#
    )
}

#[test]
fn priority_classes_and_priority_admission() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    // The system classes exist from the start, print as upstream, and stay.
    wait_until(20, "the system priority classes exist", || {
        let names = api.ok(&["get", "priorityclasses", "-o", "name"]);
        ["system-cluster-critical", "system-node-critical"]
            .iter()
            .all(|n| names.contains(&format!("priorityclass.scheduling.k8s.io/{n}\n")))
    });
    let printed = api.ok(&["get", "pc"]);
    let header: Vec<&str> = printed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{printed}"
    );
    let row = printed
        .lines()
        .find(|l| l.starts_with("system-node-critical"))
        .expect("a row per class");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (cells[1], cells[2], cells[4]),
        ("2000001000", "false", "PreemptLowerPriority"),
        "{printed}"
    );
    let described = api.json(&["get", "priorityclass", "system-cluster-critical"]);
    assert_eq!(described["value"], 2_000_000_000);
    assert_eq!(
        described["description"],
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."
    );
    let listed = api.ok(&[
        "api-resources",
        "--api-group=scheduling.k8s.io",
        "--no-headers",
    ]);
    let fields: Vec<&str> = listed.split_whitespace().collect();
    assert_eq!(
        fields,
        [
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "false",
            "PriorityClass"
        ],
        "{listed}"
    );
    let err = api.fails(&["delete", "priorityclass", "system-node-critical"]);
    assert!(
        err.contains("this is a system priority class and cannot be deleted"),
        "{err}"
    );

    // `kubectl create priorityclass` POSTs protobuf; the class rules are upstream's.
    api.ok(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=batch jobs first",
    ]);
    let high = api.json(&["get", "pc", "high"]);
    assert_eq!(high["value"], 1000, "{high}");
    assert_eq!(high["description"], "batch jobs first");
    assert_eq!(high["preemptionPolicy"], "PreemptLowerPriority");
    let err = api.fails(&["create", "priorityclass", "system-mine", "--value=5"]);
    assert!(
        err.contains("priority class names with 'system-' prefix are reserved for system use only"),
        "{err}"
    );
    let err = api.fails(&["create", "priorityclass", "huge", "--value=1000000001"]);
    assert!(
        err.contains("maximum allowed value of a user defined priority is 1000000000"),
        "{err}"
    );
    let err = api.fails(&["patch", "pc", "high", "-p", r#"{"value":5}"#]);
    assert!(
        err.contains("value: Forbidden: may not be changed in an update."),
        "{err}"
    );

    // Pods get their priority from the class they name, and may not pick their own.
    assert!(api.with_manifest("create", NAMESPACE).0);
    let (ok, text) = api.with_manifest(
        "create",
        &pod_manifest("p", r#""priorityClassName":"high","#),
    );
    assert!(ok, "{text}");
    let p = api.json(&["get", "pod", "p", "-n", "team-a"]);
    assert_eq!(p["spec"]["priority"], 1000, "{p}");
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let (ok, text) = api.with_manifest("create", &pod_manifest("plain", ""));
    assert!(ok, "{text}");
    let plain = api.json(&["get", "pod", "plain", "-n", "team-a"]);
    assert_eq!(plain["spec"]["priority"], 0, "{plain}");
    let (ok, text) = api.with_manifest(
        "create",
        &pod_manifest("lost", r#""priorityClassName":"nope","#),
    );
    assert!(
        !ok && text
            .contains(r#"pods "lost" is forbidden: no PriorityClass with name nope was found"#),
        "{text}"
    );
    let mismatch = pod_manifest("mine", r#""priorityClassName":"high","priority":5,"#);
    let (ok, text) = api.with_manifest("create", &mismatch);
    assert!(
        !ok && text.contains("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"),
        "{text}"
    );
    // An update keeps the priority (a PUT that leaves it out) and cannot change it.
    let mut stored = p.clone();
    let spec = stored["spec"].as_object_mut().unwrap();
    spec.remove("priority");
    spec.remove("preemptionPolicy");
    let (ok, text) = api.with_manifest("replace", &stored.to_string());
    assert!(ok, "{text}");
    let p = api.json(&["get", "pod", "p", "-n", "team-a"]);
    assert_eq!(p["spec"]["priority"], 1000, "{p}");
    let err = api.fails(&[
        "patch",
        "pod",
        "p",
        "-n",
        "team-a",
        "-p",
        r#"{"spec":{"priority":7}}"#,
    ]);
    assert!(
        err.contains("pod updates may not change fields other than"),
        "{err}"
    );

    // One global default: it decides for pods that name no class.
    let batch = r#"{"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"batch"},"value":-10,"globalDefault":true,"preemptionPolicy":"Never"}"#;
    let (ok, text) = api.with_manifest("create", batch);
    assert!(ok, "{text}");
    let (ok, text) = api.with_manifest("create", &batch.replace("\"batch\"", "\"other\""));
    assert!(
        !ok && text.contains(
            "PriorityClass batch is already marked as default. Only one default can exist"
        ),
        "{text}"
    );
    let defaulted = pod_manifest("defaulted", "");
    wait_until(20, "new pods get the default class", || {
        let out = api.kubectl_stdin(
            &[
                "create",
                "-f",
                "-",
                "--dry-run=server",
                "--validate=false",
                "-o",
                "json",
            ],
            Some(&defaulted),
        );
        let pod: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        pod["spec"]["priorityClassName"] == "batch"
    });
    let (ok, text) = api.with_manifest("create", &defaulted);
    assert!(ok, "{text}");
    let d = api.json(&["get", "pod", "defaulted", "-n", "team-a"]);
    assert_eq!(
        (&d["spec"]["priority"], &d["spec"]["preemptionPolicy"]),
        (&serde_json::json!(-10), &serde_json::json!("Never")),
        "{d}"
    );
    let eager = pod_manifest("eager", r#""preemptionPolicy":"PreemptLowerPriority","#);
    let (ok, text) = api.with_manifest("create", &eager);
    assert!(
        !ok && text.contains("the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name"),
        "{text}"
    );
}

#[test]
fn the_watch_cache_serves_lists_and_refuses_future_versions() {
    let Some((store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    wait_until(20, "the cache has the built-in namespaces", || {
        let resp = api.raw_get("/api/v1/namespaces?resourceVersion=0");
        resp.contains(r#""name":"kube-node-lease""#)
    });
    // A watch from a revision the store has not reached: upstream's 504 after a short wait.
    let future = store.member(0).revision() + 1000;
    let resp = api.raw_get(&format!(
        "/api/v1/namespaces?watch=true&resourceVersion={future}&timeoutSeconds=10"
    ));
    assert!(
        resp.contains("Too large resource version") && resp.contains(r#""code":504"#),
        "{resp}"
    );
    // A watch from the current revision sees only what happens next.
    let now = store.member(0).revision();
    let out = store.dir().join("watch-ns.out");
    let child = api.kubectl_background(
        6,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces?watch=true&resourceVersion={now}"),
        ],
        &out,
    );
    assert!(api.with_manifest("create", NAMESPACE).0);
    wait_until(20, "the watch saw the new namespace", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("team-a"))
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains("kube-system"),
        "no replay of older objects: {text}"
    );
    stop(child);
}

#[test]
fn generator_commands_send_protobuf_bodies() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    // Each of these POSTs an `application/vnd.kubernetes.protobuf` body and never retries
    // as JSON.
    api.ok(&["create", "namespace", "gen"]);
    api.ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "gen",
        "--from-literal=a=1",
    ]);
    api.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "gen",
        "--from-literal=p=secret",
    ]);
    api.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "gen",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    api.ok(&[
        "create",
        "service",
        "clusterip",
        "svc",
        "-n",
        "gen",
        "--tcp=80:8080",
    ]);

    let ns = api.json(&["get", "namespace", "gen"]);
    assert_eq!(ns["metadata"]["name"], "gen");
    let cm = api.json(&["get", "configmap", "cfg", "-n", "gen"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "1"}));
    let secret = api.json(&["get", "secret", "s", "-n", "gen"]);
    assert_eq!(
        secret["data"],
        serde_json::json!({"p": "c2VjcmV0"}),
        "{secret}"
    );
    let deploy = api.json(&["get", "deployment", "web", "-n", "gen"]);
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 2, "{deploy}");
    assert_eq!(
        spec["selector"]["matchLabels"],
        serde_json::json!({"app": "web"})
    );
    assert_eq!(
        spec["template"]["metadata"]["labels"],
        serde_json::json!({"app": "web"})
    );
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27", "{deploy}");
    assert_eq!(container["name"], "nginx", "{deploy}");
    let svc = api.json(&["get", "service", "svc", "-n", "gen"]);
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["port"], 80, "{svc}");
    assert_eq!(port["targetPort"], 8080, "{svc}");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "svc"}));

    // A protobuf body that does not decode is a 400 naming the cause, not a 415.
    let resp = api.raw_typed(
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        "k8s\0\u{a}\u{5}x",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("not a valid Kubernetes protobuf object"),
        "{resp}"
    );

    // `auth can-i` POSTs a protobuf SelfSubjectAccessReview; on the insecure port (no
    // authorization) everything is allowed.
    let can = api.ok(&["auth", "can-i", "create", "pods"]);
    assert_eq!(can.trim(), "yes");
}

#[test]
fn rbac_and_service_account_generators_send_protobuf_bodies() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    // Each `create` below POSTs an `application/vnd.kubernetes.protobuf` body.
    api.ok(&["create", "namespace", "rbac"]);
    api.ok(&["create", "serviceaccount", "robot", "-n", "rbac"]);
    api.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "rbac",
        "--verb=get,list",
        "--resource=pods",
        "--resource-name=x",
    ]);
    api.ok(&[
        "create",
        "clusterrole",
        "logs",
        "--verb=get",
        "--resource=deployments.apps",
        "--non-resource-url=/logs/*",
    ]);
    api.ok(&[
        "create",
        "rolebinding",
        "read",
        "-n",
        "rbac",
        "--role=reader",
        "--user=alice",
        "--serviceaccount=rbac:robot",
    ]);
    api.ok(&[
        "create",
        "clusterrolebinding",
        "logs",
        "--clusterrole=logs",
        "--user=bob",
        "--group=devs",
    ]);

    let sa = api.json(&["get", "serviceaccount", "robot", "-n", "rbac"]);
    assert_eq!(sa["kind"], "ServiceAccount", "{sa}");
    assert_eq!(sa["metadata"]["namespace"], "rbac", "{sa}");
    let role = api.json(&["get", "role", "reader", "-n", "rbac"]);
    assert_eq!(
        role["rules"],
        serde_json::json!([{"verbs": ["get", "list"], "apiGroups": [""],
                            "resources": ["pods"], "resourceNames": ["x"]}]),
        "{role}"
    );
    let cluster_role = api.json(&["get", "clusterrole", "logs"]);
    assert_eq!(
        cluster_role["rules"],
        serde_json::json!([
            {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]},
            {"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]),
        "{cluster_role}"
    );
    let rbac = "rbac.authorization.k8s.io";
    let binding = api.json(&["get", "rolebinding", "read", "-n", "rbac"]);
    assert_eq!(
        binding["roleRef"],
        serde_json::json!({"apiGroup": rbac, "kind": "Role", "name": "reader"}),
        "{binding}"
    );
    assert_eq!(
        binding["subjects"],
        serde_json::json!([
            {"kind": "User", "apiGroup": rbac, "name": "alice"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "rbac"}]),
        "{binding}"
    );
    let cluster_binding = api.json(&["get", "clusterrolebinding", "logs"]);
    assert_eq!(
        cluster_binding["roleRef"],
        serde_json::json!({"apiGroup": rbac, "kind": "ClusterRole", "name": "logs"}),
        "{cluster_binding}"
    );
    assert_eq!(
        cluster_binding["subjects"],
        serde_json::json!([
            {"kind": "User", "apiGroup": rbac, "name": "bob"},
            {"kind": "Group", "apiGroup": rbac, "name": "devs"}]),
        "{cluster_binding}"
    );
}

#[test]
fn malformed_writes_get_a_status_and_change_nothing() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    let status = |resp: &str| resp.split_whitespace().nth(1).unwrap_or("").to_string();
    // The wrong shape for the kind: refused before anything reads it.
    let odd = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"odd"},"spec":5}"#;
    let resp = api.raw("POST", "/api/v1/namespaces", odd);
    assert_eq!(status(&resp), "400", "{resp}");
    assert!(resp.contains("cannot be handled as a Namespace"), "{resp}");
    assert!(api.with_manifest("create", NAMESPACE).0);
    let deploy = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"team-a"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    assert!(api.with_manifest("create", deploy).0);
    let path = "/apis/apps/v1/namespaces/team-a/deployments/web";
    // A patch that turns the object into something else.
    let resp = api.raw_typed("PATCH", path, "application/merge-patch+json", "[1]");
    assert_eq!(status(&resp), "422", "{resp}");
    // A small JSON patch that would double the object 40 times.
    let ops: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"op":"copy","from":"","path":"/x{i}"}}"#))
        .collect();
    let doubling = format!("[{}]", ops.join(","));
    let resp = api.raw_typed("PATCH", path, "application/json-patch+json", &doubling);
    assert_eq!(status(&resp), "422", "{resp}");
    assert!(resp.contains("would add more than"), "{resp}");
    let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(d["metadata"]["generation"], 1, "nothing changed");
    // fieldValidation: a key given twice is refused (Strict, kubectl's default), warned
    // about (Warn), or let through (Ignore: the last one wins).
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}"#;
    let cms = "/api/v1/namespaces/team-a/configmaps";
    let resp = api.raw("POST", &format!("{cms}?fieldValidation=Strict"), dup);
    assert_eq!(status(&resp), "400", "{resp}");
    assert!(
        resp.contains(r#"strict decoding error: duplicate field \"data.a\""#),
        "{resp}"
    );
    let resp = api.raw("POST", &format!("{cms}?fieldValidation=Bogus"), dup);
    assert_eq!(status(&resp), "400", "{resp}");
    let resp = api.raw("POST", &format!("{cms}?fieldValidation=Warn"), dup);
    assert_eq!(status(&resp), "201", "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("warning: 299 - \"duplicate field"),
        "{resp}"
    );
    let (ok, text) = api.with_manifest("create", &dup.replace("\"dup\"", "\"dup2\""));
    assert!(ok, "--validate=false sends no fieldValidation: {text}");
}

#[test]
fn aggregated_discovery_answers_in_two_requests() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    // A fresh discovery cache: kubectl asks /api and /apis for the aggregated form and,
    // getting it, needs no per-group-version requests.
    let _ = std::fs::remove_dir_all(api.home.join(".kube"));
    let out = api.kubectl(&["api-resources", "-v=6"]);
    let log = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(
        text.contains("deployments") && text.contains("selfsubjectaccessreviews"),
        "{text}"
    );
    let gets: Vec<&str> = log.lines().filter(|l| l.contains(" GET ")).collect();
    assert!(
        gets.len() == 2
            && gets
                .iter()
                .all(|l| l.contains("/api?") || l.contains("/apis?")),
        "{gets:#?}"
    );
}

#[test]
fn everyday_kubectl_commands() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    let versions = api.ok(&["api-versions"]);
    assert!(
        versions.lines().any(|l| l == "apps/v1") && versions.lines().any(|l| l == "v1"),
        "{versions}"
    );
    assert!(api.with_manifest("create", NAMESPACE).0);
    // Client-side apply: created, unchanged, configured; diff shows the change first.
    let apply = |manifest: &str| {
        let out = api.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(apply(DEPLOYMENT), "deployment.apps/web created");
    assert_eq!(apply(DEPLOYMENT), "deployment.apps/web unchanged");
    let changed = DEPLOYMENT.replace("replicas: 2", "replicas: 3");
    let diff = api.kubectl_stdin(&["diff", "-f", "-"], Some(&changed));
    let diff_text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff exits 1 when there are differences: {diff_text}"
    );
    assert!(
        diff_text.contains("-  replicas: 2") && diff_text.contains("+  replicas: 3"),
        "{diff_text}"
    );
    assert_eq!(apply(&changed), "deployment.apps/web configured");
    let same = api.kubectl_stdin(&["diff", "-f", "-"], Some(&changed));
    assert_eq!(same.status.code(), Some(0));
    // Output formats.
    let wide = api.ok(&["get", "deployment", "web", "-n", "team-a", "-o", "wide"]);
    assert!(
        wide.contains("IMAGES") && wide.contains("nginx:1"),
        "{wide}"
    );
    let replicas = api.ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        "team-a",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "3");
    let yaml = api.ok(&["get", "deployment", "web", "-n", "team-a", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("replicas: 3"),
        "{yaml}"
    );
    let described = api.ok(&["describe", "deployment", "web", "-n", "team-a"]);
    assert!(
        described.contains("Name:") && described.contains("web") && described.contains("Replicas:"),
        "{described}"
    );
    api.ok(&["annotate", "deployment", "web", "-n", "team-a", "team=blue"]);
    let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(d["metadata"]["annotations"]["team"], "blue");
    // rollout status follows the status a controller (here: the test) writes.
    let generation = d["metadata"]["generation"].as_i64().unwrap();
    let status = format!(
        r#"{{"status":{{"observedGeneration":{generation},"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3,"conditions":[{{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"}},{{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}}]}}}}"#
    );
    let resp = api.raw_typed(
        "PATCH",
        "/apis/apps/v1/namespaces/team-a/deployments/web/status",
        "application/merge-patch+json",
        &status,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let rolled = api.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "team-a",
        "--timeout=20s",
    ]);
    assert!(rolled.contains("successfully rolled out"), "{rolled}");
    let deleted = api.ok(&["delete", "deployment", "web", "-n", "team-a", "--wait=true"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(api
        .fails(&["get", "deployment", "web", "-n", "team-a"])
        .contains("not found"));
}

#[test]
fn server_side_apply_tracks_field_managers() {
    let Some((_store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    assert!(api.with_manifest("create", NAMESPACE).0);
    let ssa = |manifest: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        let out = api.kubectl_stdin(&args, Some(manifest));
        (out.status.success(), output_text(&out))
    };
    let cm = |key: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: team-a\ndata:\n  key: \"{key}\"\n  mine: \"yes\"\n")
    };
    let get_cm = || api.json(&["get", "configmap", "ssa", "-n", "team-a"]);

    // Created, then applied unchanged (no write), then changed.
    let (ok, text) = ssa(&cm("1"), &[]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "configmap/ssa serverside-applied");
    let first = get_cm();
    assert_eq!(first["data"]["key"], "1");
    assert!(
        first["metadata"].get("managedFields").is_none(),
        "kubectl hides managedFields by default"
    );
    let (ok, text) = ssa(&cm("1"), &[]);
    assert!(ok && text.contains("serverside-applied"), "{text}");
    assert_eq!(
        get_cm()["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"],
        "an unchanged apply writes nothing"
    );
    let (ok, text) = ssa(&cm("2"), &[]);
    assert!(ok, "{text}");
    assert_eq!(get_cm()["data"]["key"], "2");

    // A server-side dry run changes nothing, for an existing object or a new one.
    let (ok, text) = ssa(&cm("3"), &["--dry-run=server"]);
    assert!(ok && text.contains("(server dry run)"), "{text}");
    assert_eq!(get_cm()["data"]["key"], "2");
    let (ok, text) = ssa(
        &cm("3").replace("name: ssa", "name: ghost"),
        &["--dry-run=server"],
    );
    assert!(ok, "{text}");
    assert!(api
        .fails(&["get", "configmap", "ghost", "-n", "team-a"])
        .contains("not found"));

    // A second manager changing the same key conflicts, unless it forces.
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: team-a\ndata:\n  key: \"9\"\n";
    let (ok, text) = ssa(other, &["--field-manager=other"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl" using v1: .data.key"#
        ),
        "{text}"
    );
    assert_eq!(get_cm()["data"]["key"], "2");
    let (ok, text) = ssa(other, &["--field-manager=other", "--force-conflicts"]);
    assert!(ok, "{text}");
    let shown = api.json(&[
        "get",
        "configmap",
        "ssa",
        "-n",
        "team-a",
        "--show-managed-fields",
    ]);
    assert_eq!(
        shown["data"],
        serde_json::json!({"key": "9", "mine": "yes"})
    );
    let managed = shown["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields shown");
    let of = |m: &str| {
        managed
            .iter()
            .find(|e| e["manager"] == m)
            .unwrap_or_else(|| panic!("no entry for {m}: {managed:#?}"))
    };
    assert_eq!(managed.len(), 2, "{managed:#?}");
    assert_eq!(of("kubectl")["operation"], "Apply");
    assert_eq!(
        of("kubectl")["fieldsV1"],
        serde_json::json!({"f:data": {"f:mine": {}}})
    );
    assert_eq!(
        of("other")["fieldsV1"],
        serde_json::json!({"f:data": {"f:key": {}}})
    );
    assert_eq!(of("other")["fieldsType"], "FieldsV1");
    assert!(of("other")["time"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // Other writes record an Update entry for their manager.
    api.ok(&["label", "configmap", "ssa", "-n", "team-a", "tier=x"]);
    let shown = api.json(&[
        "get",
        "configmap",
        "ssa",
        "-n",
        "team-a",
        "--show-managed-fields",
    ]);
    let labeler = shown["metadata"]["managedFields"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["operation"] == "Update").cloned())
        .expect("an Update entry");
    assert_eq!(labeler["manager"], "kubectl-label");
    assert_eq!(
        labeler["fieldsV1"],
        serde_json::json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );

    // A container dropped from the configuration goes.
    let two = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
      - name: side
        image: busybox:1
";
    let (ok, text) = ssa(two, &[]);
    assert!(
        ok && text.contains("deployment.apps/web serverside-applied"),
        "{text}"
    );
    let names = |d: &Value| -> Vec<String> {
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(names(&d), ["app", "side"]);
    let one = two.replace("      - name: side\n        image: busybox:1\n", "");
    let (ok, text) = ssa(&one, &[]);
    assert!(ok, "{text}");
    let d = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(names(&d), ["app"]);
    assert_eq!(d["metadata"]["generation"], 2);
}
