//! The official Kubernetes Python client (`pip install kubernetes`, installed by
//! `.ci/setup`) against `rkube etcd` + `rkube apiserver`: CRUD, selectors, every patch type,
//! a stale PUT, binding, status and scale subresources, watches and 410 after compaction.
//! The checks live in `tests/python/client_test.py`.

#![cfg(not(madsim))]

mod common;

use std::process::Command;

use common::apiserver::{output_text, require_tool, ApiServer};
use common::{require_etcdctl, Cluster};

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
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_test.py");
    let out = Command::new("timeout")
        .args(["120", "python3", script])
        .arg(api.url())
        .arg(store.member(0).endpoint())
        .output()
        .expect("run python3");
    // On failure the API server's drop prints its log.
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("all checks passed"),
        "python client checks failed:\n{}",
        output_text(&out)
    );
}
