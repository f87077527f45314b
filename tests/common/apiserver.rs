//! `rkube apiserver` processes for the end-to-end tests, and the real kubectl (and raw HTTP)
//! against them. Each server runs plain HTTP on a free loopback port (`--secure-port 0`),
//! is killed on drop, and prints its log if the test failed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_until, RKUBE};

/// Hard limit of one kubectl call (enforced with `timeout`).
pub const KUBECTL_TIMEOUT_SECS: u64 = 30;

fn installed(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True if `program` runs: without it a test skips (and passes), unless `CI` is set, where
/// it fails (`how` says how to install it).
pub fn require_tool(program: &str, args: &[&str], how: &str) -> bool {
    if installed(program, args) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{program} is not installed but CI is set: run .ci/setup ({how})");
    }
    eprintln!("SKIPPED: {program} is not installed (run .ci/setup, or {how})");
    false
}

/// [`require_tool`] for kubectl.
pub fn require_kubectl() -> bool {
    require_tool("kubectl", &["version", "--client"], "install kubectl")
}

/// One `rkube apiserver` process and the kubectl home that talks to it.
pub struct ApiServer {
    pub port: u16,
    pub home: PathBuf,
    log: PathBuf,
    child: Child,
}

impl ApiServer {
    /// An API server on the store at `store_url`, with its files under `dir`.
    pub fn start(store_url: &str, dir: &Path) -> ApiServer {
        let port = free_port();
        // Named by port: several API servers may share a directory.
        let log = dir.join(format!("apiserver-{port}.log"));
        let out = std::fs::File::create(&log).expect("apiserver log");
        let child = Command::new(RKUBE)
            .args(["apiserver", "--etcd-servers", store_url])
            .args(["--insecure-port", &port.to_string(), "--secure-port", "0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("spawn rkube apiserver");
        let home = dir.join(format!("home-{port}"));
        std::fs::create_dir_all(&home).expect("kubectl home");
        let api = ApiServer {
            port,
            home,
            log,
            child,
        };
        wait_until(20, "the API server answers /version", || {
            // Not yet listening is not a failure here: only a connection is tried.
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && api.raw_get("/version").starts_with("HTTP/1.1 200")
        });
        api
    }

    /// `http://127.0.0.1:<port>`, for clients other than kubectl.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `timeout <secs> kubectl --server ... <args>`, with a kubectl home of its own.
    fn command(&self, timeout_secs: u64, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg(timeout_secs.to_string())
            .arg("kubectl")
            .args(["--server", &format!("http://127.0.0.1:{}", self.port)])
            .args(args)
            // Discovery is cached under HOME: one per test.
            .env("HOME", &self.home)
            .env("KUBECONFIG", self.home.join("none"));
        cmd
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = self
            .command(KUBECTL_TIMEOUT_SECS, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(text) = input {
            use std::io::Write;
            stdin.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(stdin);
        child.wait_with_output().expect("kubectl output")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Starts kubectl in the background (for `get -w`), ended by `timeout` after `secs`; its
    /// output goes to `out`, so a test can wait for what it printed so far.
    pub fn kubectl_background(&self, secs: u64, args: &[&str], out: &Path) -> Child {
        let file = std::fs::File::create(out).expect("kubectl output file");
        self.command(secs, args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl")
    }

    /// Runs kubectl and returns stdout; panics with stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl {args:?} failed: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl printed JSON")
    }

    /// `kubectl <verb> -f - --validate=false` with `manifest`; (success, stdout+stderr).
    pub fn with_manifest(&self, verb: &str, manifest: &str) -> (bool, String) {
        let out = self.kubectl_stdin(&[verb, "-f", "-", "--validate=false"], Some(manifest));
        (out.status.success(), output_text(&out))
    }

    /// One raw HTTP/1.1 GET; the whole response (head and body) as text.
    pub fn raw_get(&self, path_and_query: &str) -> String {
        self.raw("GET", path_and_query, "")
    }

    /// One raw HTTP/1.1 request with a JSON body; the whole response as text.
    pub fn raw(&self, method: &str, path_and_query: &str, body: &str) -> String {
        self.raw_typed(method, path_and_query, "application/json", body)
    }

    /// One raw HTTP/1.1 request with a body of `content_type`.
    pub fn raw_typed(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &str,
    ) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(KUBECTL_TIMEOUT_SECS)))
            .expect("read timeout");
        let req = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send request");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// The JSON body of a raw GET answered 200 (not chunked: lists and gets are not).
    pub fn raw_json(&self, path_and_query: &str) -> Value {
        let resp = self.raw_get(path_and_query);
        let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "GET {path_and_query}: {resp}"
        );
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path_and_query}: {e}: {body}"))
    }
}

impl ApiServer {
    /// Kills the process now (a server that dies under its clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- apiserver log ---\n{log}");
        }
    }
}

/// A process's stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Ends a background kubectl: SIGTERM to its `timeout`, which passes it on to kubectl.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
