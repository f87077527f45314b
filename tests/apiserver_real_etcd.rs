//! The API server on the real etcd 3.4 (Debian's `etcd-server`, installed by `.ci/setup`)
//! instead of rkube's own store, driven by the real kubectl: built-in namespaces, create,
//! get, replace with a stale resourceVersion, patch, delete, paginated lists, a watch, and
//! 410 Expired for a watch and a `continue` token from before an etcd compaction.
//!
//! Without the `etcd` binary (or etcdctl, or kubectl) the tests skip, unless `CI` is set,
//! where a missing tool is a failure (run `.ci/setup`).

#![cfg(not(madsim))]

mod common;

use std::process::{Command, Output};

use common::apiserver::{continue_token, require_kubectl, stop, ApiServer};
use common::{
    describe, etcdctl, free_port, kvs, poll, require_etcdctl, require_tool, wait_until, Process,
};
use serde_json::Value;

/// Attempts at starting etcd when a port turns out to be taken.
const ETCD_START_ATTEMPTS: usize = 3;

/// True if the test should run: needs etcd, etcdctl and kubectl. A missing tool skips the
/// test, or fails it when `CI` is set.
fn require_tools() -> bool {
    require_etcdctl()
        && require_tool("etcd", &["--version"], "apt-get install etcd-server")
        && require_kubectl()
}

/// One real `etcd` process in a temporary directory, killed on drop (its log tail printed
/// if the test failed).
struct Etcd {
    client_port: u16,
    /// Held to be killed on drop; declared before `dir`, so the process is killed (and its log
    /// read) before the directory goes.
    _process: Process,
    dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("rkube-real-etcd-")
            .tempdir()
            .expect("temp dir");
        for attempt in 1..=ETCD_START_ATTEMPTS {
            let (client_port, peer_port) = (free_port(), free_port());
            let client = format!("http://127.0.0.1:{client_port}");
            let peer = format!("http://127.0.0.1:{peer_port}");
            let mut cmd = Command::new("etcd");
            cmd.args(["--name", "default"])
                .arg("--data-dir")
                .arg(dir.path().join(format!("etcd-{attempt}")))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &format!("default={peer}")]);
            let log = dir.path().join(format!("etcd-{attempt}.log"));
            let mut process = Process::spawn("etcd", &mut cmd, &log);
            let endpoint = format!("127.0.0.1:{client_port}");
            let mut exited = None;
            let healthy = poll(30, || {
                exited = process.exited();
                exited.is_some() || etcdctl(&endpoint, &["endpoint", "health"]).status.success()
            });
            if healthy && exited.is_none() {
                return Etcd {
                    client_port,
                    _process: process,
                    dir,
                };
            }
            let why = match exited {
                Some(status) => format!("etcd exited ({status})"),
                None => "etcd did not become healthy in 30s".to_string(),
            };
            if attempt == ETCD_START_ATTEMPTS {
                // The process's drop prints its log tail.
                panic!("{why}");
            }
            drop(process);
            eprintln!("etcd start attempt {attempt} failed ({why}); retrying with new ports");
        }
        unreachable!()
    }

    /// `host:port`, as etcdctl wants it.
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `http://host:port`, as `--etcd-servers` wants it.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint(), args)
    }

    /// Runs etcdctl and returns stdout; panics if it failed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(out.status.success(), "{}", describe(args, &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-w", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("etcdctl printed JSON")
    }

    /// The store's current revision.
    fn revision(&self) -> i64 {
        self.json(&["get", "/"])["header"]["revision"]
            .as_i64()
            .expect("a revision in the header")
    }
}

fn rv_of(obj: &Value) -> i64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("resourceVersion is a revision: {obj}"))
}

const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

const MANIFESTS: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
  {"apiVersion": "v1", "kind": "ConfigMap",
   "metadata": {"name": "cfg", "namespace": "team-a", "labels": {"app": "web"}},
   "data": {"key": "1"}},
  {"apiVersion": "apps/v1", "kind": "Deployment",
   "metadata": {"name": "web", "namespace": "team-a"},
   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
     "template": {"metadata": {"labels": {"app": "web"}},
       "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}}}
]}"#;

fn config_map(name: &str, value: &str, rv: Option<i64>) -> String {
    let rv = rv.map_or(String::new(), |rv| {
        format!(r#", "resourceVersion": "{rv}""#)
    });
    format!(
        r#"{{"apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {{"name": "{name}", "namespace": "team-a"{rv}}}, "data": {{"key": "{value}"}}}}"#
    )
}

#[test]
fn kubectl_crud_on_real_etcd() {
    if !require_tools() {
        return;
    }
    let etcd = Etcd::start();
    let api = ApiServer::start(&etcd.url(), etcd.dir.path());

    // The built-in namespaces, written by the API server into etcd at start.
    wait_until(20, "kubectl get ns lists the built-in namespaces", || {
        let out = api.kubectl(&["get", "ns", "-o", "name"]);
        let text = String::from_utf8_lossy(&out.stdout);
        BUILTIN_NAMESPACES
            .iter()
            .all(|ns| text.lines().any(|l| l == format!("namespace/{ns}")))
    });
    let table = api.ok(&["get", "ns"]);
    assert!(table.starts_with("NAME"), "{table}");
    for ns in BUILTIN_NAMESPACES {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{ns} in:\n{table}"
        );
    }

    // create -f of a namespace, a configmap and a deployment (one List).
    let (ok, text) = api.with_manifest("create", MANIFESTS);
    assert!(ok, "{text}");
    for line in [
        "namespace/team-a created",
        "configmap/cfg created",
        "deployment.apps/web created",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
    }

    // get -o json: server-set fields, and the object as etcd stores it.
    let ns = api.json(&["get", "namespace", "team-a"]);
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");
    let cm = api.json(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert_eq!(cm["data"]["key"], "1");
    assert_eq!(cm["metadata"]["namespace"], "team-a");
    assert_eq!(
        cm["metadata"]["uid"].as_str().map(str::len),
        Some(36),
        "{cm}"
    );
    let rv1 = rv_of(&cm);
    let stored = etcd.json(&["get", "/registry/configmaps/team-a/cfg"]);
    let kv = &stored["kvs"][0];
    assert_eq!(
        kv["mod_revision"].as_i64(),
        Some(rv1),
        "resourceVersion is etcd's mod_revision: {stored}"
    );
    let (_, value) = kvs(&stored).pop().expect("the configmap is in etcd");
    let in_etcd: Value = serde_json::from_str(&value).expect("etcd holds JSON");
    assert_eq!(in_etcd["metadata"]["uid"], cm["metadata"]["uid"]);
    assert_eq!(in_etcd["data"]["key"], "1");
    let deploy = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(deploy["spec"]["replicas"], 2, "{deploy}");
    assert_eq!(deploy["metadata"]["generation"], 1, "{deploy}");
    assert_eq!(
        etcd.ok(&["get", "/registry/deployments/team-a/web", "--keys-only"])
            .trim(),
        "/registry/deployments/team-a/web"
    );

    // replace with a stale resourceVersion: Conflict; with the current one it succeeds.
    let (ok, text) = api.with_manifest("replace", &config_map("cfg", "2", Some(rv1 - 1)));
    assert!(!ok, "a stale replace succeeded: {text}");
    assert!(
        text.contains("Conflict") && text.contains("the object has been modified"),
        "{text}"
    );
    assert_eq!(
        api.json(&["get", "configmap", "cfg", "-n", "team-a"])["data"]["key"],
        "1"
    );
    let (ok, text) = api.with_manifest("replace", &config_map("cfg", "2", Some(rv1)));
    assert!(ok, "{text}");
    let cm = api.json(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert_eq!(cm["data"]["key"], "2");
    let rv2 = rv_of(&cm);
    assert!(rv2 > rv1, "{rv2} > {rv1}");

    // patch: strategic (kubectl's default), merge and JSON patch.
    api.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "team-a",
        "-p",
        r#"{"data":{"s":"1"}}"#,
    ]);
    api.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "team-a",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"key":null,"m":"1"}}"#,
    ]);
    api.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "team-a",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"1"}]"#,
    ]);
    let cm = api.json(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert_eq!(
        cm["data"],
        serde_json::json!({"s": "1", "m": "1", "j": "1"}),
        "{cm}"
    );
    assert!(rv_of(&cm) > rv2);
    api.ok(&[
        "scale",
        "deployment",
        "web",
        "-n",
        "team-a",
        "--replicas",
        "3",
    ]);
    let deploy = api.json(&["get", "deployment", "web", "-n", "team-a"]);
    assert_eq!(deploy["spec"]["replicas"], 3, "{deploy}");
    assert_eq!(deploy["metadata"]["generation"], 2, "{deploy}");

    // Paginated lists (etcd range limits and `more`) return every object once.
    for i in 0..4 {
        let (ok, text) = api.with_manifest("create", &config_map(&format!("page-{i}"), "p", None));
        assert!(ok, "{text}");
    }
    let names = api.ok(&["get", "cm", "-n", "team-a", "--chunk-size=2", "-o", "name"]);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(
        names,
        [
            "configmap/cfg",
            "configmap/page-0",
            "configmap/page-1",
            "configmap/page-2",
            "configmap/page-3"
        ]
    );

    // delete: gone from the API and from etcd.
    assert!(api
        .ok(&["delete", "configmap", "cfg", "-n", "team-a"])
        .contains("deleted"));
    let err = api.fails(&["get", "configmap", "cfg", "-n", "team-a"]);
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "cfg" not found"#),
        "{err}"
    );
    assert_eq!(
        etcd.ok(&["get", "/registry/configmaps/team-a/cfg"]).trim(),
        ""
    );
}

#[test]
fn watches_and_compaction_on_real_etcd() {
    if !require_tools() {
        return;
    }
    let etcd = Etcd::start();
    let mut api = ApiServer::start(&etcd.url(), etcd.dir.path());
    let (ok, text) = api.with_manifest("create", MANIFESTS);
    assert!(ok, "{text}");
    let (ok, text) = api.with_manifest("create", &config_map("other", "1", None));
    assert!(ok, "{text}");

    // `kubectl get cm -w` lists, then sees a change made through the API server.
    let out = etcd.dir.path().join("watch-cm.out");
    let args = [
        "get",
        "cm",
        "-n",
        "team-a",
        "-w",
        "--output-watch-events",
        "-o",
        "json",
    ];
    let watch = api.kubectl_background(60, &args, &out);
    let events = || -> Vec<Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let has = |evs: &[Value], kind: &str, name: &str, key: &str| {
        evs.iter().any(|e| {
            e["type"] == kind
                && e["object"]["metadata"]["name"] == name
                && e["object"]["data"]["key"] == key
        })
    };
    wait_until(30, "the watch listed the configmaps", || {
        let evs = events();
        has(&evs, "ADDED", "cfg", "1") && has(&evs, "ADDED", "other", "1")
    });
    api.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "team-a",
        "-p",
        r#"{"data":{"key":"2"}}"#,
    ]);
    api.ok(&["delete", "cm", "other", "-n", "team-a"]);
    let seen = poll(30, || {
        let evs = events();
        has(&evs, "MODIFIED", "cfg", "2") && has(&evs, "DELETED", "other", "1")
    });
    stop(watch);
    assert!(seen, "the watch saw the changes: {:?}", events());

    // A continue token from before a compaction: 410 Expired (etcd's ErrCompacted).
    for name in ["page-1", "page-2"] {
        let (ok, text) = api.with_manifest("create", &config_map(name, "1", None));
        assert!(ok, "{text}");
    }
    let page = api.raw_json("/api/v1/namespaces/team-a/configmaps?limit=1");
    let token = continue_token(&page);
    // Pages of one list are read at one revision: the next page works before compaction.
    let next = api.raw_json(&format!(
        "/api/v1/namespaces/team-a/configmaps?limit=1&continue={token}"
    ));
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1), "{next}");
    api.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "team-a",
        "-p",
        r#"{"data":{"key":"3"}}"#,
    ]);
    let rev = etcd.revision();
    let list_rev = rv_of(&page);
    assert!(rev > list_rev, "{rev} > {list_rev}");
    etcd.ok(&["compaction", &rev.to_string()]);

    let resp = api.raw_get(&format!(
        "/api/v1/namespaces/team-a/configmaps?limit=1&continue={token}"
    ));
    assert!(
        resp.starts_with("HTTP/1.1 410") && resp.contains("Expired"),
        "{resp}"
    );

    // A watch from a compacted revision ends with a 410 Expired error event. Watches are
    // served from the API server's watch cache, whose window of history starts at its first
    // list (at start-up), as upstream's does: a revision is refused once it is older than
    // that window. An API server started after the compaction lists after it, so revision 2
    // is older than its window.
    api.kill();
    let api = ApiServer::start(&etcd.url(), etcd.dir.path());
    let resp = api.raw_get(
        "/api/v1/namespaces/team-a/configmaps?watch=true&resourceVersion=2&timeoutSeconds=5",
    );
    assert!(
        resp.contains(r#""type":"ERROR""#) && resp.contains(r#""code":410"#),
        "{resp}"
    );
    assert!(resp.contains("Expired"), "{resp}");

    // After the compaction, the API server still serves reads, writes and watches.
    let (ok, text) = api.with_manifest("create", &config_map("after", "1", None));
    assert!(ok, "{text}");
    let after = rv_of(&api.json(&["get", "cm", "after", "-n", "team-a"]));
    let resp = api.raw_get(&format!(
        "/api/v1/namespaces/team-a/configmaps?watch=true&resourceVersion={}&timeoutSeconds=2",
        after - 1
    ));
    assert!(
        resp.contains(r#""type":"ADDED""#) && resp.contains(r#""name":"after""#),
        "{resp}"
    );
}
