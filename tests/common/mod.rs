//! Shared helpers of the real-build end-to-end tests: free loopback ports, child processes
//! with log files (killed on drop, their log tails printed when a test fails), `rkube etcd`
//! members and clusters in temporary directories, an `etcdctl` 3.4 runner with a per-call
//! timeout, background watchers, and wait-until-condition helpers with deadlines.
//!
//! Tests call [`require_etcdctl`] (or [`require_tool`]) first: without the tool they skip (and
//! pass) unless the `CI` environment variable is set, where a missing tool is a failure (run
//! `.ci/setup`).

#![allow(dead_code)]

pub mod apiserver;

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `rkube` binary under test.
pub const RKUBE: &str = env!("CARGO_BIN_EXE_rkube");
/// The cluster token every test member uses (etcd's default).
pub const TOKEN: &str = "etcd-cluster";
/// Hard limit of one `etcdctl` call (enforced with `timeout`).
pub const ETCDCTL_TIMEOUT_SECS: u64 = 20;
/// How often the wait helpers poll.
pub const POLL: Duration = Duration::from_millis(100);
/// Lines of a member's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;
/// Attempts at starting a cluster when a port turns out to be taken.
const START_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------------
// Required tools

/// Whether `program args` runs and exits 0 (asked once per test binary).
fn tool_runs(program: &str, args: &[&str]) -> bool {
    static RUNS: OnceLock<Mutex<HashMap<Vec<String>, bool>>> = OnceLock::new();
    let key: Vec<String> = std::iter::once(program)
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    let runs = RUNS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(&known) = runs.lock().unwrap().get(&key) {
        return known;
    }
    let ok = Command::new(program)
        .args(args)
        // etcdctl is always run with API v3 here (see [`etcdctl`]); other tools ignore it.
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    runs.lock().unwrap().insert(key, ok);
    ok
}

/// True if the test should run: `program args` runs. Without it the test is skipped (returns
/// false) unless `CI` is set, in which case it fails (`how` says how to install it).
pub fn require_tool(program: &str, args: &[&str], how: &str) -> bool {
    if tool_runs(program, args) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{program} is not installed but CI is set: run .ci/setup ({how})");
    }
    eprintln!("SKIPPED: {program} is not installed (run .ci/setup, or {how})");
    false
}

/// [`require_tool`] for `etcdctl` (3.4, Debian's etcd-client).
pub fn require_etcdctl() -> bool {
    require_tool("etcdctl", &["version"], "apt-get install etcd-client")
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `f` every [`POLL`] until it returns `Some`, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `f` until it is true; false if it still is not after `secs` (for callers that want
/// to explain the failure themselves).
pub fn poll(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `f` until it is true, or panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(secs, what, || f().then_some(()))
}

/// [`wait_for`] for async conditions (on a tokio runtime): awaits `f` every [`POLL`] until it
/// returns `Some`, or panics with `what` after `secs`.
pub async fn wait_for_async<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// A loopback port nobody listens on now and that this process has not handed out before.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..1000 {
        let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(_) => continue,
        };
        if used.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free loopback port found");
}

// ---------------------------------------------------------------------------------------------
// etcdctl

/// Runs `etcdctl` (API v3) against `endpoints` (comma-separated `host:port`, no scheme: etcdctl
/// 3.4 would put the scheme into HTTP/2 `:authority`), killed after [`ETCDCTL_TIMEOUT_SECS`].
pub fn etcdctl(endpoints: &str, args: &[&str]) -> Output {
    etcdctl_stdin(endpoints, args, None)
}

/// [`etcdctl`] with `input` on stdin.
pub fn etcdctl_stdin(endpoints: &str, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("-k")
        .arg("5")
        .arg(ETCDCTL_TIMEOUT_SECS.to_string())
        .arg("etcdctl")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--dial-timeout=5s")
        .arg("--command-timeout=15s")
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdctl");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("etcdctl stdin");
        let data = input.to_vec();
        // A writer thread, so a large input cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    child.wait_with_output().expect("wait for etcdctl")
}

/// Renders an `etcdctl` result for assertion messages.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "etcdctl {}\n  status: {}\n  stdout: {}\n  stderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Decodes standard base64 (etcdctl's `-w json` keys and values).
pub fn b64(s: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 character {:?}", c as char),
        }
    }
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A base64 JSON field as a UTF-8 string ("" if absent).
pub fn b64_str(v: &Value) -> String {
    String::from_utf8(b64(v.as_str().unwrap_or(""))).expect("utf-8")
}

/// `(key, value)` pairs of a `get -w json` answer.
pub fn kvs(v: &Value) -> Vec<(String, String)> {
    v["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| (b64_str(&kv["key"]), b64_str(&kv["value"])))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Processes

/// The last [`LOG_TAIL_LINES`] lines of `name`'s log at `path`, framed for a failure message.
pub fn log_tail(name: &str, path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    format!(
        "---- last {} lines of {name} ({}) ----\n{}\n---- end of {name} ----",
        lines.len() - from,
        path.display(),
        lines[from..].join("\n"),
    )
}

/// A child process whose stdout and stderr go to a log file: killed (and reaped) on drop, and
/// if the test is failing, the tail of its log is printed then.
pub struct Process {
    pub name: String,
    pub log_path: PathBuf,
    child: Child,
}

impl Process {
    /// Spawns `cmd` (stdin closed, `NO_COLOR` set), appending its output to `log_path`.
    pub fn spawn(name: &str, cmd: &mut Command, log_path: &Path) -> Process {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let err = log.try_clone().expect("clone log handle");
        let child = cmd
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Process {
            name: name.to_string(),
            log_path: log_path.to_path_buf(),
            child,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.name, &self.log_path)
    }

    /// kill -9 and reap (the drop does this too).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `secs` for the exit; returns its status. If it does not
    /// exit, it is killed and the test fails (the drop prints the log tail).
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid of our own unreaped child and a valid signal number.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill(SIGTERM) failed: {}",
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("{} did not exit within {secs}s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Members

/// One `rkube etcd` process (or its stopped state: data dir, ports and log survive restarts).
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    /// Member id, as the store derives it from the peer URL and cluster token.
    pub id: u64,
    initial_cluster: String,
    extra_args: Vec<String>,
    /// The running process (None while stopped); its log tail is printed if it is still
    /// running when a failing test ends.
    process: Option<Process>,
}

impl Member {
    /// `host:port` of the client API, as etcdctl wants it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `http://host:port` of the client API (for the Rust client).
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// Process id of the running member.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("member is running").id()
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// Spawns the process on its data dir (first start or restart); logs are appended.
    pub fn start(&mut self) {
        assert!(self.process.is_none(), "{} is already running", self.name);
        let mut cmd = Command::new(RKUBE);
        cmd.arg("etcd")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url()])
            .args(["--listen-peer-urls", &self.peer_url()])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(&self.extra_args)
            .env("RUST_LOG", "info");
        self.process = Some(Process::spawn(&self.name, &mut cmd, &self.log_path));
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Sends SIGTERM and waits up to `secs` for the exit; returns its status.
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        let process = self.process.as_mut().expect("member is running");
        let status = process.terminate(secs);
        self.process = None;
        status
    }

    /// kill -9 then start again on the same data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// The whole log so far (of every start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.name, &self.log_path)
    }

    /// Runs etcdctl against this member only.
    pub fn ctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint(), args)
    }

    /// Runs etcdctl with stdin against this member only.
    pub fn ctl_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        etcdctl_stdin(&self.endpoint(), args, Some(input))
    }

    /// Runs etcdctl, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "expected success on {}:\n{}",
            self.name,
            describe(args, &out)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs etcdctl with stdin, asserts success and returns stdout.
    pub fn ok_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let out = self.ctl_stdin(args, input);
        assert!(
            out.status.success(),
            "expected success on {}:\n{}",
            self.name,
            describe(args, &out)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs etcdctl, asserts failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            !out.status.success(),
            "expected failure on {}:\n{}",
            self.name,
            describe(args, &out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs etcdctl with `-w json` appended, asserts success and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.push("-w");
        full.push("json");
        let out = self.ok(&full);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bad json from etcdctl {full:?}: {e}\n{out}"))
    }

    /// `put key value`.
    pub fn put(&self, key: &str, value: &str) {
        let out = self.ok(&["put", key, value]);
        assert_eq!(out.trim(), "OK");
    }

    /// Linearizable `get key` as a value, None if absent.
    pub fn get(&self, key: &str) -> Option<String> {
        kvs(&self.json(&["get", key]))
            .into_iter()
            .next()
            .map(|(_, v)| v)
    }

    /// The store revision this member reports (serializable, so it works on any member).
    pub fn revision(&self) -> i64 {
        let v = self.json(&["get", "revision-probe", "--consistency=s"]);
        v["header"]["revision"].as_i64().expect("header.revision")
    }

    /// `endpoint status` of this member: `(member_id, leader)`, or None if it does not answer.
    pub fn status(&self) -> Option<(u64, u64)> {
        let out = self.ctl(&["endpoint", "status", "-w", "json"]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let st = &v.get(0)?["Status"];
        Some((st["header"]["member_id"].as_u64()?, st["leader"].as_u64()?))
    }

    /// Waits until this member answers and knows a leader; returns the leader's id.
    pub fn wait_ready(&self, secs: u64) -> u64 {
        wait_for(
            secs,
            &format!("{} to answer with a leader", self.name),
            || {
                self.status().and_then(|(id, leader)| {
                    assert_eq!(
                        id, self.id,
                        "port {} answers as another member",
                        self.client_port
                    );
                    (leader != 0).then_some(leader)
                })
            },
        )
    }

    /// Whether the log shows a listener could not be started (a port taken by someone else).
    fn bind_failed(&self) -> bool {
        let log = self.log();
        log.contains("server stopped") || log.contains("ddress already in use")
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters

/// Members sharing one temporary directory; every process is killed on drop, and if the test
/// is failing, each member's log tail is printed.
pub struct Cluster {
    pub members: Vec<Member>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// One member, started and ready.
    pub fn single() -> Cluster {
        Cluster::start(1, &[])
    }

    /// `n` members with `extra_args` each, started, with an elected leader.
    pub fn start(n: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_with(n, extra_args, |_| {})
    }

    /// Like [`Cluster::start`], calling `prepare` on each member before its first start (e.g.
    /// to restore a backup into its data dir). Ports that turn out to be taken are replaced.
    pub fn start_with(n: usize, extra_args: &[&str], prepare: impl Fn(&Member)) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("rkube-e2e-")
            .tempdir()
            .expect("temp dir");
        for attempt in 1..=START_ATTEMPTS {
            let mut c = Cluster::new_in(dir.path(), n, extra_args);
            for m in &c.members {
                prepare(m);
            }
            for m in &mut c.members {
                m.start();
            }
            match c.wait_all_ready(30) {
                Ok(()) => {
                    return Cluster {
                        members: std::mem::take(&mut c.members),
                        dir,
                    }
                }
                Err(e) if attempt < START_ATTEMPTS => {
                    eprintln!(
                        "cluster start attempt {attempt} failed ({e}); retrying with new ports"
                    );
                    for m in &mut c.members {
                        m.kill();
                        let _ = std::fs::remove_dir_all(&m.data_dir);
                        let _ = std::fs::remove_file(&m.log_path);
                    }
                }
                Err(e) => panic!("cluster did not start: {e}"),
            }
        }
        unreachable!()
    }

    /// Members with fresh ports in `dir`, not started.
    fn new_in(dir: &Path, n: usize, extra_args: &[&str]) -> StartingCluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{}=http://127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, &(client_port, peer_port))| {
                let name = format!("m{}", i + 1);
                Member {
                    data_dir: dir.join(format!("{name}.etcd")),
                    log_path: dir.join(format!("{name}.log")),
                    id: rkube::store::member_id(&format!("http://127.0.0.1:{peer_port}"), TOKEN),
                    name,
                    client_port,
                    peer_port,
                    initial_cluster: initial_cluster.clone(),
                    extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                    process: None,
                }
            })
            .collect();
        StartingCluster { members }
    }

    /// The temporary directory (for scratch files of the test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    pub fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    /// All client endpoints, comma-separated, for etcdctl.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the member with `id`.
    pub fn index_of(&self, id: u64) -> usize {
        self.members
            .iter()
            .position(|m| m.id == id)
            .unwrap_or_else(|| panic!("no member with id {id:x}"))
    }

    /// Waits until every member in `among` answers and they agree on a leader that is one of
    /// `among`; returns the leader's index.
    pub fn wait_leader(&self, among: &[usize], secs: u64) -> usize {
        let id = wait_for(
            secs,
            &format!("members {among:?} to agree on a leader among them"),
            || {
                let mut leaders = HashSet::new();
                for &i in among {
                    let (id, leader) = self.members[i].status()?;
                    assert_eq!(id, self.members[i].id, "port answers as another member");
                    leaders.insert(leader);
                }
                let leader = *leaders.iter().next()?;
                let known = among.iter().any(|&i| self.members[i].id == leader);
                (leaders.len() == 1 && known).then_some(leader)
            },
        );
        self.index_of(id)
    }

    /// Indices of all members.
    pub fn all(&self) -> Vec<usize> {
        (0..self.members.len()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        for m in &mut self.members {
            // A running member's process prints its log tail itself as it is killed.
            let stopped = m.process.is_none();
            m.kill();
            if failing && stopped {
                eprintln!("{}", m.log_tail());
            }
        }
    }
}

/// Members during startup (before the cluster owns them); killed on drop.
struct StartingCluster {
    members: Vec<Member>,
}

impl StartingCluster {
    /// Waits until every member answers as itself and all agree on a leader. Err on a port
    /// conflict (retryable); panics on a timeout.
    fn wait_all_ready(&mut self, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            for m in &mut self.members {
                if m.bind_failed() {
                    return Err(format!("{} could not listen on its ports", m.name));
                }
                // The drop prints each member's log tail.
                if !m.is_running() {
                    panic!("{} exited during startup", m.name);
                }
            }
            let mut leaders = HashSet::new();
            let mut all = true;
            for m in &self.members {
                match m.status() {
                    Some((id, _)) if id != m.id => {
                        return Err(format!("port {} answers as another member", m.client_port))
                    }
                    Some((_, leader)) if leader != 0 => {
                        leaders.insert(leader);
                    }
                    _ => all = false,
                }
            }
            if all && leaders.len() == 1 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!("cluster not ready within {secs}s");
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for StartingCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watchers

/// A background `etcdctl watch` whose stdout is collected; killed on drop.
pub struct Watcher {
    child: Mutex<Child>,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Watcher {
    /// Starts `etcdctl watch ARGS` against `endpoint`.
    pub fn start(endpoint: &str, args: &[&str]) -> Watcher {
        let mut child = Command::new("etcdctl")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--dial-timeout=5s")
            .arg("watch")
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl watch");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
                out.clone(),
            ),
            (
                Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
                err.clone(),
            ),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        Watcher {
            child: Mutex::new(child),
            out,
            err,
        }
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().expect("try_wait")
    }

    /// Waits until stdout satisfies `pred`; returns it. Fails early if etcdctl exits.
    pub fn wait_stdout(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut exited_at: Option<Instant> = None;
        loop {
            let s = self.stdout();
            if pred(&s) {
                return s;
            }
            // After an exit, give the reader threads a moment to drain the pipes.
            if exited_at.is_none() && self.exited().is_some() {
                exited_at = Some(Instant::now());
            }
            let drained = exited_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300));
            if drained || Instant::now() >= deadline {
                let why = if drained {
                    "etcdctl watch exited".to_string()
                } else {
                    format!("timed out after {secs}s")
                };
                panic!(
                    "watch output: {why} waiting for {what}\nstdout:\n{s}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the watch process to exit by itself; returns (status, stdout, stderr).
    pub fn wait_exit(&self, secs: u64) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.exited() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(200));
                return (st, self.stdout(), self.stderr());
            }
            if Instant::now() >= deadline {
                panic!(
                    "etcdctl watch did not exit within {secs}s\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Other processes

/// Runs `rkube ARGS` to completion, asserting success; returns stdout.
pub fn rkube_ok(args: &[&str]) -> String {
    let out = Command::new(RKUBE)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run rkube");
    assert!(
        out.status.success(),
        "rkube {} failed: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
