//! rkube's store versus real etcd 3.4, side by side on this machine, in one run.
//!
//! For each topology (1 member; 3 members on 127.0.0.1) and each system (`etcd` from `PATH`,
//! then `rkube etcd` from this build) the bench starts fresh processes on fresh loopback ports
//! with temporary data dirs (fsync on: both systems' defaults), waits until every member
//! answers a linearizable Range, finds the leader, and drives it with the same tonic client
//! code (the stubs in `rkube::store::pb`) on a multi-thread tokio runtime:
//!
//! - sequential put latency: one client, 1000 puts (`SEQ_PUTS`), p50 and p99;
//! - put throughput with 1, 16 and 64 concurrent clients (closed loop, a warm-up then a fixed
//!   window), ops/s and p99;
//! - linearizable single-key get throughput with 16 clients (`RANGE_CLIENTS`), ops/s and p99.
//!
//! Every value is 256 bytes and every put writes a distinct key. All traffic goes to the
//! leader's client URL, so both systems are measured on the same path (no follower hop).
//! It prints a Markdown table (etcd, rkube, ratio) and whether the target holds: rkube at
//! least 1.5× etcd's throughput and a p99 no worse than etcd's at every point. The numbers
//! are printed as measured.
//!
//! Run: `cargo bench --bench store_vs_etcd`. `BENCH_SECONDS` (default 5) sets the length of
//! each throughput window and scales the sequential run; `BENCH_SECONDS=1` is a smoke test.
//! For profiling one case, `BENCH_MEMBERS=1|3` and `BENCH_ONLY=etcd|rkube` narrow the run
//! (the target is then not evaluated).

use std::process::ExitCode;

#[cfg(madsim)]
fn main() -> ExitCode {
    eprintln!("store_vs_etcd runs real processes and sockets; it is not built under --cfg madsim");
    ExitCode::SUCCESS
}

#[cfg(not(madsim))]
fn main() -> ExitCode {
    bench::main()
}

#[cfg(not(madsim))]
mod bench {
    use std::collections::HashSet;
    use std::fs::File;
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, ExitCode, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rkube::store::pb::etcdserverpb::{
        kv_client::KvClient, maintenance_client::MaintenanceClient, PutRequest, RangeRequest,
        StatusRequest,
    };
    use tempfile::TempDir;
    use tonic::transport::{Channel, Endpoint};

    /// Number of sequential puts at the default window length.
    const SEQ_PUTS: usize = 1000;
    /// Concurrent clients of the linearizable get workload.
    const RANGE_CLIENTS: usize = 16;
    /// Length of each throughput window, in seconds, unless `BENCH_SECONDS` says otherwise.
    const DEFAULT_BENCH_SECONDS: u64 = 5;
    /// Warm-up before each throughput window (requests run but are not counted), in seconds.
    const WARMUP_SECONDS: u64 = 1;
    /// Bytes of every value written.
    const VALUE_BYTES: usize = 256;
    /// Concurrent clients of the put throughput workloads.
    const PUT_CLIENTS: [usize; 3] = [1, 16, 64];
    /// Most gRPC connections to the leader; clients share them round-robin.
    const MAX_CHANNELS: usize = 8;
    /// Members of each topology.
    const TOPOLOGIES: [usize; 2] = [1, 3];
    /// How long a cluster may take to elect a leader and answer reads, in seconds.
    const READY_DEADLINE_SECONDS: u64 = 60;
    /// Pause between readiness polls, in milliseconds.
    const POLL_MS: u64 = 100;
    /// Deadline of one client request (connect and call), in seconds.
    const REQUEST_TIMEOUT_SECONDS: u64 = 10;
    /// Lines of a member's log shown when it fails to start.
    const LOG_TAIL_LINES: usize = 30;
    /// Required throughput ratio rkube/etcd.
    const TARGET_THROUGHPUT_RATIO: f64 = 1.5;
    /// Largest allowed p99 ratio rkube/etcd.
    const TARGET_P99_RATIO: f64 = 1.0;

    // -----------------------------------------------------------------------------------------
    // Settings and systems

    /// How long to measure.
    #[derive(Debug, Clone, Copy)]
    struct Settings {
        window: Duration,
        warmup: Duration,
        seq_puts: usize,
        /// `BENCH_MEMBERS`: run only this topology (for profiling one case).
        only_members: Option<usize>,
        /// `BENCH_ONLY`: run only this system (for profiling; the target is not evaluated).
        only_system: Option<Kind>,
    }

    impl Settings {
        fn from_env() -> Result<Settings, String> {
            let secs = match std::env::var("BENCH_SECONDS") {
                Ok(s) => s
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("BENCH_SECONDS={s:?}: need a positive whole number"))?,
                Err(_) => DEFAULT_BENCH_SECONDS,
            };
            let scaled = SEQ_PUTS as u64 * secs.min(DEFAULT_BENCH_SECONDS) / DEFAULT_BENCH_SECONDS;
            let only_members = match std::env::var("BENCH_MEMBERS") {
                Ok(s) => Some(
                    s.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| TOPOLOGIES.contains(n))
                        .ok_or_else(|| {
                            format!("BENCH_MEMBERS={s:?}: need one of {TOPOLOGIES:?}")
                        })?,
                ),
                Err(_) => None,
            };
            let only_system = match std::env::var("BENCH_ONLY").as_deref() {
                Ok("etcd") => Some(Kind::Etcd),
                Ok("rkube") => Some(Kind::Rkube),
                Ok(other) => return Err(format!("BENCH_ONLY={other:?}: need etcd or rkube")),
                Err(_) => None,
            };
            Ok(Settings {
                window: Duration::from_secs(secs),
                warmup: Duration::from_secs(WARMUP_SECONDS),
                seq_puts: scaled.max(1) as usize,
                only_members,
                only_system,
            })
        }

        fn runs(&self, kind: Kind, members: usize) -> bool {
            self.only_system.is_none_or(|k| k == kind)
                && self.only_members.is_none_or(|m| m == members)
        }
    }

    /// The 1-, 5- and 15-minute load averages.
    fn loadavg() -> String {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Etcd,
        Rkube,
    }

    /// A store implementation under test: which binary and how it is called.
    #[derive(Debug, Clone)]
    struct System {
        kind: Kind,
        program: PathBuf,
        version: String,
    }

    impl System {
        /// `rkube` as built by cargo for this bench (`target/release/rkube`).
        fn rkube() -> Result<System, String> {
            let program = PathBuf::from(env!("CARGO_BIN_EXE_rkube"));
            if !program.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release --bin rkube` first",
                    program.display()
                ));
            }
            let version = command_first_line(&program, &["--version"]).unwrap_or_default();
            Ok(System {
                kind: Kind::Rkube,
                program,
                version,
            })
        }

        /// `etcd` from `PATH`, or None (with the reason) if it cannot be run.
        fn etcd() -> Result<System, String> {
            let program = PathBuf::from("etcd");
            let version = command_first_line(&program, &["--version"])
                .map_err(|e| format!("etcd is not runnable from PATH ({e}); run .ci/setup"))?;
            Ok(System {
                kind: Kind::Etcd,
                program,
                version,
            })
        }

        fn label(&self) -> &'static str {
            match self.kind {
                Kind::Etcd => "etcd 3.4",
                Kind::Rkube => "rkube",
            }
        }

        /// The command line of member `i` of `members` (etcd's flag names for both systems;
        /// rkube accepts exactly these, and takes its log level from `RUST_LOG`).
        fn command(&self, i: usize, members: &[Ports], data_dir: &Path) -> Command {
            let url = |port: u16| format!("http://127.0.0.1:{port}");
            let cluster: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(j, m)| format!("n{}={}", j + 1, url(m.peer)))
                .collect();
            let me = members[i];
            let mut cmd = Command::new(&self.program);
            if self.kind == Kind::Rkube {
                cmd.arg("etcd").env("RUST_LOG", "error");
            }
            cmd.arg("--name").arg(format!("n{}", i + 1));
            cmd.arg("--data-dir").arg(data_dir);
            cmd.arg("--listen-client-urls").arg(url(me.client));
            cmd.arg("--advertise-client-urls").arg(url(me.client));
            cmd.arg("--listen-peer-urls").arg(url(me.peer));
            cmd.arg("--initial-advertise-peer-urls").arg(url(me.peer));
            cmd.arg("--initial-cluster").arg(cluster.join(","));
            cmd.arg("--initial-cluster-state").arg("new");
            if self.kind == Kind::Etcd {
                cmd.args(["--logger", "zap", "--log-level", "error"]);
            }
            cmd
        }
    }

    fn command_first_line(program: &Path, args: &[&str]) -> Result<String, String> {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("{} exited with {}", program.display(), out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().next().unwrap_or("").trim().to_string())
    }

    // -----------------------------------------------------------------------------------------
    // Clusters

    /// The client and peer ports of one member.
    #[derive(Debug, Clone, Copy)]
    struct Ports {
        client: u16,
        peer: u16,
    }

    /// A loopback port nobody listens on now and that this run has not handed out before.
    fn free_port(handed_out: &mut HashSet<u16>) -> Result<u16, String> {
        for _ in 0..1000 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("bind a loopback port: {e}"))?
                .port();
            if handed_out.insert(port) {
                return Ok(port);
            }
        }
        Err("no free loopback port".into())
    }

    /// Running members of one system; killed on drop, with their data dirs removed.
    struct Cluster {
        children: Vec<Child>,
        endpoints: Vec<String>,
        logs: Vec<PathBuf>,
        dir: TempDir,
    }

    impl Cluster {
        fn start(sys: &System, size: usize, ports: &mut HashSet<u16>) -> Result<Cluster, String> {
            let dir = tempfile::Builder::new()
                .prefix("store-vs-etcd-")
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?;
            let mut members = Vec::with_capacity(size);
            for _ in 0..size {
                members.push(Ports {
                    client: free_port(ports)?,
                    peer: free_port(ports)?,
                });
            }
            let mut cluster = Cluster {
                children: Vec::new(),
                endpoints: members
                    .iter()
                    .map(|m| format!("http://127.0.0.1:{}", m.client))
                    .collect(),
                logs: Vec::new(),
                dir,
            };
            for i in 0..size {
                let data = cluster.dir.path().join(format!("n{}", i + 1));
                let log_path = cluster.dir.path().join(format!("n{}.log", i + 1));
                let log = File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
                let err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
                let child = sys
                    .command(i, &members, &data)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .spawn()
                    .map_err(|e| format!("spawn {}: {e}", sys.program.display()))?;
                cluster.children.push(child);
                cluster.logs.push(log_path);
            }
            Ok(cluster)
        }

        /// An error with the log tail of the first member that has exited, if any.
        fn check_alive(&mut self) -> Result<(), String> {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&self.logs[i]).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
                    return Err(format!(
                        "member n{} exited with {status}; log tail:\n{tail}",
                        i + 1
                    ));
                }
            }
            Ok(())
        }

        /// Waits until every member answers a linearizable Range; returns the leader's URL.
        async fn wait_ready(&mut self) -> Result<String, String> {
            let deadline = Instant::now() + Duration::from_secs(READY_DEADLINE_SECONDS);
            loop {
                self.check_alive()?;
                let last_error = match self.probe().await {
                    Ok(leader) => return Ok(leader),
                    Err(e) => e,
                };
                if Instant::now() >= deadline {
                    return Err(format!(
                        "not ready after {READY_DEADLINE_SECONDS} s (last error: {last_error})"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            }
        }

        /// One readiness attempt: a Range on every member, then Status to find the leader.
        async fn probe(&self) -> Result<String, String> {
            let mut leader_url = None;
            for url in &self.endpoints {
                let ch = connect(url).await?;
                let range = RangeRequest {
                    key: b"bench/ready".to_vec(),
                    ..Default::default()
                };
                KvClient::new(ch.clone())
                    .range(range)
                    .await
                    .map_err(|s| format!("{url}: {s}"))?;
                let status = MaintenanceClient::new(ch)
                    .status(StatusRequest {})
                    .await
                    .map_err(|s| format!("{url}: {s}"))?
                    .into_inner();
                let me = status.header.map(|h| h.member_id).unwrap_or(0);
                if status.leader != 0 && status.leader == me {
                    leader_url = Some(url.clone());
                }
            }
            leader_url.ok_or_else(|| "no member reports itself as leader".to_string())
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for child in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    async fn connect(url: &str) -> Result<Channel, String> {
        let timeout = Duration::from_secs(REQUEST_TIMEOUT_SECONDS);
        Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("bad endpoint {url}: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("connect {url}: {e}"))
    }

    // -----------------------------------------------------------------------------------------
    // Samples

    /// Latencies of the successful requests of a workload, and its failures.
    #[derive(Debug, Default)]
    struct Samples {
        micros: Vec<u64>,
        errors: u64,
        first_error: Option<String>,
    }

    impl Samples {
        fn record(&mut self, took: Duration, result: Result<(), String>) {
            match result {
                Ok(()) => self.micros.push(took.as_micros() as u64),
                Err(e) => {
                    self.errors += 1;
                    self.first_error.get_or_insert(e);
                }
            }
        }

        fn merge(&mut self, other: Samples) {
            self.micros.extend(other.micros);
            self.errors += other.errors;
            if self.first_error.is_none() {
                self.first_error = other.first_error;
            }
        }

        /// The `p` quantile (nearest rank) in milliseconds; NaN without samples.
        fn percentile_ms(&mut self, p: f64) -> f64 {
            if self.micros.is_empty() {
                return f64::NAN;
            }
            self.micros.sort_unstable();
            let rank = (p * self.micros.len() as f64).ceil() as usize;
            self.micros[rank.clamp(1, self.micros.len()) - 1] as f64 / 1000.0
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workloads

    fn seq_key(i: usize) -> Vec<u8> {
        format!("bench/seq/{i:08}").into_bytes()
    }

    async fn put(kv: &mut KvClient<Channel>, key: Vec<u8>, value: &[u8]) -> Result<(), String> {
        let req = PutRequest {
            key,
            value: value.to_vec(),
            ..Default::default()
        };
        kv.put(req).await.map(drop).map_err(|s| format!("put: {s}"))
    }

    /// A linearizable single-key get that must find the key.
    async fn get(kv: &mut KvClient<Channel>, key: Vec<u8>) -> Result<(), String> {
        let resp = kv
            .range(RangeRequest {
                key,
                ..Default::default()
            })
            .await
            .map_err(|s| format!("range: {s}"))?
            .into_inner();
        match resp.kvs.len() {
            1 => Ok(()),
            n => Err(format!("range: expected 1 key, got {n}")),
        }
    }

    /// One client, `n` puts one after another (these keys are what the get workload reads).
    async fn sequential_puts(ch: Channel, n: usize, value: &[u8]) -> Samples {
        let mut kv = KvClient::new(ch);
        let mut samples = Samples::default();
        for i in 0..n {
            let start = Instant::now();
            let result = put(&mut kv, seq_key(i), value).await;
            samples.record(start.elapsed(), result);
        }
        samples
    }

    /// What each closed-loop client does.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        /// Puts to distinct keys under a prefix named by `run` (the number of clients).
        Put { run: usize },
        /// Gets of the first `keys` sequential keys.
        Get { keys: usize },
    }

    /// When requests count: they must complete within `[begin, end]`.
    #[derive(Debug, Clone, Copy)]
    struct Window {
        begin: Instant,
        end: Instant,
    }

    async fn client_loop(
        ch: Channel,
        id: usize,
        op: Op,
        w: Window,
        value: Arc<Vec<u8>>,
    ) -> Samples {
        /// Strides that spread successive gets of one client over the key space.
        const CLIENT_STRIDE: usize = 7919;
        const REQUEST_STRIDE: usize = 104_729;
        let mut kv = KvClient::new(ch);
        let mut samples = Samples::default();
        for i in 0.. {
            let start = Instant::now();
            if start >= w.end {
                break;
            }
            let result = match op {
                Op::Put { run } => {
                    put(
                        &mut kv,
                        format!("bench/put{run}/{id}/{i}").into_bytes(),
                        &value,
                    )
                    .await
                }
                Op::Get { keys } => {
                    get(
                        &mut kv,
                        seq_key((id * CLIENT_STRIDE + i * REQUEST_STRIDE) % keys),
                    )
                    .await
                }
            };
            let done = Instant::now();
            if done >= w.begin && done <= w.end {
                samples.record(done - start, result);
            }
        }
        samples
    }

    /// `clients` closed-loop clients sharing `channels`; returns (ops/s, samples).
    async fn closed_loop(
        channels: &[Channel],
        clients: usize,
        op: Op,
        s: Settings,
        value: &Arc<Vec<u8>>,
    ) -> (f64, Samples) {
        let begin = Instant::now() + s.warmup;
        let window = Window {
            begin,
            end: begin + s.window,
        };
        let tasks: Vec<_> = (0..clients)
            .map(|id| {
                let ch = channels[id % channels.len()].clone();
                tokio::spawn(client_loop(ch, id, op, window, value.clone()))
            })
            .collect();
        let mut all = Samples::default();
        for t in tasks {
            match t.await {
                Ok(samples) => all.merge(samples),
                Err(e) => all.record(Duration::ZERO, Err(format!("client task: {e}"))),
            }
        }
        let ops = all.micros.len() as f64 / s.window.as_secs_f64();
        (ops, all)
    }

    // -----------------------------------------------------------------------------------------
    // One system on one topology

    /// Whether bigger or smaller values of a metric are better, and how it is judged.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Goal {
        /// Throughput: rkube must reach [`TARGET_THROUGHPUT_RATIO`] × etcd.
        Throughput,
        /// A p99: rkube must be at most [`TARGET_P99_RATIO`] × etcd.
        P99,
        /// Reported, not judged (p50).
        Info,
    }

    /// One measured number.
    #[derive(Debug, Clone)]
    struct Point {
        metric: String,
        value: f64,
        goal: Goal,
    }

    /// Everything measured for one system on one topology.
    #[derive(Debug, Default)]
    struct RunResult {
        points: Vec<Point>,
        /// Failed requests: (workload, count, first error).
        errors: Vec<(String, u64, String)>,
    }

    impl RunResult {
        fn latency(&mut self, name: &str, samples: &mut Samples, with_p50: bool) {
            if with_p50 {
                let value = samples.percentile_ms(0.50);
                self.points.push(Point {
                    metric: format!("{name} p50 (ms)"),
                    value,
                    goal: Goal::Info,
                });
            }
            let value = samples.percentile_ms(0.99);
            self.points.push(Point {
                metric: format!("{name} p99 (ms)"),
                value,
                goal: Goal::P99,
            });
            if samples.errors > 0 {
                let first = samples.first_error.clone().unwrap_or_default();
                self.errors.push((name.to_string(), samples.errors, first));
            }
        }

        fn throughput(&mut self, name: &str, ops: f64, samples: &mut Samples) {
            self.points.push(Point {
                metric: format!("{name} (ops/s)"),
                value: ops,
                goal: Goal::Throughput,
            });
            self.latency(name, samples, false);
        }
    }

    fn plural(n: usize, word: &str) -> String {
        format!("{n} {word}{}", if n == 1 { "" } else { "s" })
    }

    /// Starts `sys` with `size` members, runs every workload against the leader, stops it.
    async fn run_system(
        sys: &System,
        size: usize,
        s: Settings,
        ports: &mut HashSet<u16>,
    ) -> Result<RunResult, String> {
        let mut cluster = Cluster::start(sys, size, ports)?;
        let leader = cluster.wait_ready().await?;
        let mut channels = Vec::new();
        for _ in 0..MAX_CHANNELS {
            channels.push(connect(&leader).await?);
        }
        let tag = format!("[{}, {}]", sys.label(), plural(size, "member"));
        let out = run_workloads(&channels, s, &tag).await;
        cluster.check_alive()?;
        Ok(out)
    }

    /// The workloads, in order, over `channels` to one member.
    async fn run_workloads(channels: &[Channel], s: Settings, tag: &str) -> RunResult {
        let value: Arc<Vec<u8>> =
            Arc::new((0..VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect());
        let mut out = RunResult::default();
        let mut seq = sequential_puts(channels[0].clone(), s.seq_puts, &value).await;
        eprintln!(
            "{tag} sequential put: p50 {:.2} ms, p99 {:.2} ms",
            seq.percentile_ms(0.5),
            seq.percentile_ms(0.99)
        );
        let name = format!("put, 1 client × {} sequential", s.seq_puts);
        out.latency(&name, &mut seq, true);

        for clients in PUT_CLIENTS {
            let chans = &channels[..clients.min(channels.len())];
            let op = Op::Put { run: clients };
            let (ops, mut samples) = closed_loop(chans, clients, op, s, &value).await;
            eprintln!(
                "{tag} put ×{clients}: {ops:.0} ops/s, p99 {:.2} ms",
                samples.percentile_ms(0.99)
            );
            let name = format!("put, {}", plural(clients, "client"));
            out.throughput(&name, ops, &mut samples);
        }

        let op = Op::Get { keys: s.seq_puts };
        let (ops, mut samples) = closed_loop(channels, RANGE_CLIENTS, op, s, &value).await;
        eprintln!(
            "{tag} get ×{RANGE_CLIENTS}: {ops:.0} ops/s, p99 {:.2} ms",
            samples.percentile_ms(0.99)
        );
        let name = format!("linearizable get, {RANGE_CLIENTS} clients");
        out.throughput(&name, ops, &mut samples);
        out
    }

    // -----------------------------------------------------------------------------------------
    // Report

    /// Results per topology: (members, etcd's, rkube's).
    type Results = Vec<(usize, Option<RunResult>, Option<RunResult>)>;

    fn fmt_value(p: Option<&Point>) -> String {
        match p {
            None => "—".into(),
            Some(p) if p.value.is_nan() => "n/a".into(),
            Some(p) if p.goal == Goal::Throughput => format!("{:.0}", p.value),
            Some(p) => format!("{:.2}", p.value),
        }
    }

    /// The ratio cell and target cell of one row; pushes a failure description if missed.
    fn judge(
        etcd: Option<&Point>,
        rkube: Option<&Point>,
        failures: &mut Vec<String>,
        row: &str,
    ) -> (String, String) {
        let (Some(e), Some(r)) = (etcd, rkube) else {
            return ("—".into(), "not evaluated".into());
        };
        let ratio = r.value / e.value;
        let (ok, want) = match r.goal {
            Goal::Throughput => (
                ratio >= TARGET_THROUGHPUT_RATIO,
                format!("≥ {TARGET_THROUGHPUT_RATIO}"),
            ),
            Goal::P99 => (ratio <= TARGET_P99_RATIO, format!("≤ {TARGET_P99_RATIO}")),
            Goal::Info => return (format!("{ratio:.2}"), "—".into()),
        };
        if !ok {
            failures.push(format!("{row}: ratio {ratio:.2}, need {want}"));
        }
        let verdict = if ok { "✓" } else { "✗" };
        (format!("{ratio:.2}"), format!("{verdict} (need {want})"))
    }

    fn find<'a>(run: &'a Option<RunResult>, metric: &str) -> Option<&'a Point> {
        run.as_ref()
            .and_then(|r| r.points.iter().find(|p| p.metric == metric))
    }

    fn print_table(results: &Results) -> Vec<String> {
        let mut failures = Vec::new();
        println!("| topology | metric | etcd 3.4 | rkube | ratio (rkube/etcd; throughput: higher is better, latency: < 1 is better) | target |");
        println!("|---|---|---:|---:|---:|---|");
        for (size, etcd, rkube) in results {
            let topo = if *size == 1 {
                "1 member".to_string()
            } else {
                format!("{size} members")
            };
            let metrics: Vec<&Point> = rkube
                .iter()
                .chain(etcd.iter())
                .flat_map(|r| &r.points)
                .collect();
            let mut seen = HashSet::new();
            for m in metrics
                .into_iter()
                .filter(|p| seen.insert(p.metric.clone()))
            {
                let (e, r) = (find(etcd, &m.metric), find(rkube, &m.metric));
                let row = format!("{topo}, {}", m.metric);
                let (ratio, target) = judge(e, r, &mut failures, &row);
                println!(
                    "| {topo} | {} | {} | {} | {ratio} | {target} |",
                    m.metric,
                    fmt_value(e),
                    fmt_value(r)
                );
            }
        }
        failures
    }

    fn print_errors(results: &Results) -> bool {
        let mut rkube_errors = false;
        for (size, etcd, rkube) in results {
            for (label, run) in [("etcd 3.4", etcd), ("rkube", rkube)] {
                for (workload, n, first) in run.iter().flat_map(|r| &r.errors) {
                    println!("- {label}, {size} member(s), {workload}: {n} failed requests (first: {first})");
                    rkube_errors |= label == "rkube";
                }
            }
        }
        rkube_errors
    }

    fn print_verdict(results: &Results, have_etcd: bool, incomplete: bool) {
        let failures = print_table(results);
        println!();
        let rkube_errors = print_errors(results);
        let rule = format!(
            "rkube ≥ {TARGET_THROUGHPUT_RATIO}× etcd's throughput and p99 ≤ etcd's at every point"
        );
        if !have_etcd || incomplete {
            println!("Target ({rule}): NOT EVALUATED (a run is missing; see above).");
        } else if failures.is_empty() && !rkube_errors {
            println!("Target ({rule}): HOLDS.");
        } else {
            println!(
                "Target ({rule}): DOES NOT HOLD ({} of the points miss it):",
                failures.len()
            );
            for f in &failures {
                println!("- {f}");
            }
            if rkube_errors {
                println!("- rkube had failed requests (listed above)");
            }
        }
    }

    fn print_header(s: Settings, rkube: &System, etcd: Option<&System>, load_at_start: &str) {
        println!("## rkube store vs etcd");
        println!();
        println!(
            "{} s windows after {} s warm-up; {} sequential puts; {VALUE_BYTES}-byte values; \
             fsync on; all requests to the leader; {} CPUs; loadavg at start: {load_at_start}, \
             at end: {}",
            s.window.as_secs(),
            s.warmup.as_secs(),
            s.seq_puts,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            loadavg(),
        );
        println!(
            "rkube: {}; etcd: {}",
            rkube.version,
            etcd.map_or("not run", |e| e.version.as_str())
        );
        println!();
    }

    // -----------------------------------------------------------------------------------------
    // Main

    pub fn main() -> ExitCode {
        let (s, rkube) = match Settings::from_env().and_then(|s| Ok((s, System::rkube()?))) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("store_vs_etcd: {e}");
                return ExitCode::FAILURE;
            }
        };
        let etcd = System::etcd()
            .map_err(|e| eprintln!("store_vs_etcd: SKIPPING etcd: {e}"))
            .ok();
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("store_vs_etcd: tokio runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let load_at_start = loadavg();
        let mut ports = HashSet::new();
        let mut results: Results = Vec::new();
        let mut incomplete = false;
        for size in TOPOLOGIES
            .into_iter()
            .filter(|m| s.only_members.is_none_or(|o| o == *m))
        {
            let mut run = |sys: &System| {
                if !s.runs(sys.kind, size) {
                    return None;
                }
                let result = rt.block_on(run_system(sys, size, s, &mut ports));
                result
                    .map_err(|e| {
                        eprintln!(
                            "store_vs_etcd: {} with {size} member(s) failed: {e}",
                            sys.label()
                        );
                        incomplete = true;
                    })
                    .ok()
            };
            let e = etcd.as_ref().and_then(&mut run);
            let r = run(&rkube);
            results.push((size, e, r));
        }
        print_header(s, &rkube, etcd.as_ref(), &load_at_start);
        let compared = etcd.is_some() && s.only_system.is_none();
        print_verdict(&results, compared, incomplete);
        if incomplete {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}
