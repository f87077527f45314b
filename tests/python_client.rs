//! The official Kubernetes Python client (`pip install kubernetes`, installed by
//! `.ci/setup`) against `rkube etcd` + `rkube apiserver`: CRUD, selectors, every patch type,
//! a stale PUT, binding, status and scale subresources, watches and 410 after compaction.
//! The checks live in `tests/python/client_test.py`.

#![cfg(not(madsim))]

mod common;

use std::process::{Command, Stdio};

use common::{free_port, require_etcdctl, wait_until, Cluster, RKUBE};

fn python_client_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import kubernetes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_official_python_client_works() {
    if !require_etcdctl() {
        return;
    }
    if !python_client_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the kubernetes Python package is missing but CI is set: run .ci/setup"
        );
        eprintln!("SKIPPED: pip install kubernetes");
        return;
    }
    let store = Cluster::single();
    let port = free_port();
    let log_path = store.dir().join("apiserver.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut api = Command::new(RKUBE)
        .args(["apiserver", "--etcd-servers", &store.member(0).client_url()])
        .args(["--insecure-port", &port.to_string(), "--secure-port", "0"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn rkube apiserver");
    wait_until(20, "the API server listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_test.py");
    let out = Command::new("timeout")
        .args(["120", "python3", script])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(store.member(0).endpoint())
        .output()
        .expect("run python3");
    let _ = api.kill();
    let _ = api.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "python client checks failed:\n{stdout}\n{stderr}\n--- apiserver log ---\n{server_log}"
    );
}
