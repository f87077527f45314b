//! The official Kubernetes Python client (`pip install kubernetes`, installed by
//! `.ci/setup`) against `rkube etcd` + `rkube apiserver`: CRUD, selectors, every patch type,
//! a stale PUT, binding, status and scale subresources, PriorityClasses and pod priority,
//! watches and 410 after compaction. The checks live in `tests/python/client_test.py`.

#![cfg(not(madsim))]

mod common;

use std::process::Command;

use common::apiserver::{output_text, ApiServer};
use common::{require_etcdctl, require_tool, Cluster};

#[test]
fn the_official_python_client_works() {
    let python_client = require_tool(
        "python3",
        &["-c", "import kubernetes"],
        "pip install kubernetes",
    );
    if !require_etcdctl() || !python_client {
        return;
    }
    let store = Cluster::single();
    let mut api = ApiServer::start(&store.member(0).client_url(), store.dir());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_test.py");
    let run = |api: &ApiServer, phase: &[&str], done: &str| {
        let out = Command::new("timeout")
            .args(["120", "python3", script])
            .arg(api.url())
            .arg(store.member(0).endpoint())
            .args(phase)
            .output()
            .expect("run python3");
        // On failure the API server's drop prints its log.
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(done),
            "python client checks failed:\n{}",
            output_text(&out)
        );
    };
    run(&api, &[], "main phase passed");
    // The watch cache's window starts at its first list: only an API server started after
    // the compaction has a window that no longer reaches the old revision.
    api.kill();
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    run(&api, &["expired"], "all checks passed");
}
