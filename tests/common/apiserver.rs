//! `rkube apiserver` processes for the end-to-end tests, and the real kubectl (and raw HTTP)
//! against them. A server runs plain HTTP on a free loopback port (`--secure-port 0`), or,
//! started with [`ApiServer::start_secure`], only HTTPS with its own CA, certificates and
//! kubeconfigs; either is killed on drop and prints its log tail if the test failed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, require_etcdctl, require_tool, wait_until, Cluster, Process, RKUBE};

/// Hard limit of one kubectl call (enforced with `timeout`).
pub const KUBECTL_TIMEOUT_SECS: u64 = 30;

/// [`require_tool`] for kubectl.
pub fn require_kubectl() -> bool {
    require_tool("kubectl", &["version", "--client"], "install kubectl")
}

/// The set-up of most API server tests: needs etcdctl and kubectl (`None`: the test is
/// skipped), then starts a one-member `rkube etcd` and an API server on it with `start` (e.g.
/// [`ApiServer::start`]), given the store's URL and the cluster's temporary directory.
pub fn store_and_api_server(
    start: impl FnOnce(&str, &Path) -> ApiServer,
) -> Option<(Cluster, ApiServer)> {
    if !require_etcdctl() || !require_kubectl() {
        return None;
    }
    let store = Cluster::single();
    let api = start(&store.member(0).client_url(), store.dir());
    Some((store, api))
}

/// Who kubectl is.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// Nobody on a plain-HTTP server; the admin (`admin.kubeconfig`: a client certificate in
    /// system:masters) on a secure one.
    Default,
    /// A bearer token, sent to the secure port (trusting the server's CA).
    Token(&'a str),
}

/// One `rkube apiserver` process and the kubectl home that talks to it.
pub struct ApiServer {
    /// The port kubectl talks to: plain HTTP, or HTTPS for a secure server.
    pub port: u16,
    pub home: PathBuf,
    /// A secure server's `--data-dir` (CA, certificates, kubeconfigs).
    data: Option<PathBuf>,
    process: Process,
}

impl ApiServer {
    /// A plain-HTTP API server on the store at `store_url`, with its files under `dir`.
    pub fn start(store_url: &str, dir: &Path) -> ApiServer {
        let port = free_port();
        let args = ["--insecure-port", &port.to_string(), "--secure-port", "0"];
        let mut api = ApiServer::spawn(store_url, dir, port, &args, None);
        wait_until(20, "the API server answers /version", || {
            assert!(api.process.is_running(), "the API server exited");
            // Not yet listening is not a failure here: only a connection is tried.
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && api.raw_get("/version").starts_with("HTTP/1.1 200")
        });
        api
    }

    /// An API server serving only HTTPS on loopback, on the store at `store_url`, with its
    /// files (its `--data-dir` among them) under `dir` and `extra_args` added (e.g.
    /// `--token-auth-file`). Ready once kubectl with the admin kubeconfig it wrote works.
    pub fn start_secure(store_url: &str, dir: &Path, extra_args: &[&str]) -> ApiServer {
        let port = free_port();
        let data = dir.join(format!("apiserver-data-{port}"));
        let port_arg = port.to_string();
        let mut args = vec![
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port_arg,
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ];
        args.extend(extra_args);
        let mut api = ApiServer::spawn(store_url, dir, port, &args, Some(data.clone()));
        wait_until(30, "the admin kubeconfig works", || {
            assert!(api.process.is_running(), "the API server exited");
            api.kubectl(&["get", "namespace", "kube-node-lease"])
                .status
                .success()
        });
        api
    }

    /// Spawns `rkube apiserver --etcd-servers <store_url> <args>`; its log and kubectl home
    /// are named by port (several API servers may share a directory).
    fn spawn(
        store_url: &str,
        dir: &Path,
        port: u16,
        args: &[&str],
        data: Option<PathBuf>,
    ) -> ApiServer {
        let mut cmd = Command::new(RKUBE);
        cmd.args(["apiserver", "--etcd-servers", store_url])
            .args(args);
        let name = format!("apiserver :{port}");
        let process = Process::spawn(&name, &mut cmd, &dir.join(format!("apiserver-{port}.log")));
        let home = dir.join(format!("home-{port}"));
        std::fs::create_dir_all(&home).expect("kubectl home");
        ApiServer {
            port,
            home,
            data,
            process,
        }
    }

    /// `http://127.0.0.1:<port>` (`https://` for a secure server), for clients other than
    /// kubectl.
    pub fn url(&self) -> String {
        let scheme = if self.data.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A secure server's `--data-dir`: `pki/ca.crt`, `admin.kubeconfig`, ...
    pub fn data_dir(&self) -> &Path {
        self.data.as_deref().expect("a secure API server")
    }

    /// `timeout <secs> kubectl <connection and credentials> <args>`, with a kubectl home of
    /// its own.
    fn command(&self, timeout_secs: u64, auth: Auth, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg(timeout_secs.to_string()).arg("kubectl");
        match (auth, &self.data) {
            (Auth::Default, None) => {
                cmd.args(["--server", &self.url()]);
            }
            (Auth::Default, Some(data)) => {
                cmd.arg("--kubeconfig").arg(data.join("admin.kubeconfig"));
            }
            (Auth::Token(token), _) => {
                cmd.args(["--server", &self.url()])
                    .arg("--certificate-authority")
                    .arg(self.data_dir().join("pki/ca.crt"))
                    .args(["--token", token]);
            }
        }
        cmd.args(args)
            // Discovery is cached under HOME: one per test.
            .env("HOME", &self.home)
            .env("KUBECONFIG", self.home.join("none"));
        cmd
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = self
            .command(KUBECTL_TIMEOUT_SECS, Auth::Default, args)
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

    /// kubectl as `auth`.
    pub fn kubectl_as(&self, auth: Auth, args: &[&str]) -> Output {
        self.command(KUBECTL_TIMEOUT_SECS, auth, args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// Starts kubectl in the background (for `get -w`), ended by `timeout` after `secs`; its
    /// output goes to `out`, so a test can wait for what it printed so far.
    pub fn kubectl_background(&self, secs: u64, args: &[&str], out: &Path) -> Child {
        let file = std::fs::File::create(out).expect("kubectl output file");
        self.command(secs, Auth::Default, args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl")
    }

    /// Runs kubectl and returns stdout; panics with stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.kubectl(args))
    }

    /// [`ApiServer::ok`] as `auth`.
    pub fn ok_as(&self, auth: Auth, args: &[&str]) -> String {
        succeeded(args, self.kubectl_as(auth, args))
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        failed(args, self.kubectl(args))
    }

    /// [`ApiServer::fails`] as `auth`.
    pub fn fails_as(&self, auth: Auth, args: &[&str]) -> String {
        failed(args, self.kubectl_as(auth, args))
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

    /// One raw HTTP/1.1 GET (plain-HTTP servers only); the whole response (head and body) as
    /// text.
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

/// The `continue` token of a list page that must have one.
pub fn continue_token(page: &Value) -> String {
    page["metadata"]["continue"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("a first page with a continue token: {page}"))
        .to_string()
}

impl ApiServer {
    /// Kills the process now (a server that dies under its clients).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// Stdout of a kubectl run that must have succeeded (else a panic with stderr).
fn succeeded(args: &[&str], out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl {args:?} failed: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a kubectl run that must have failed (else a panic with stdout).
fn failed(args: &[&str], out: Output) -> String {
    assert!(
        !out.status.success(),
        "kubectl {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
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
