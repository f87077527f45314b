//! The API server under load: one `rkube etcd` member and one `rkube apiserver` (this
//! build, release), driven through rkube's own client library on a multi-thread runtime.
//!
//! - pod create, get and update (PUT conditioned on resourceVersion) with 1, 16 and 64
//!   concurrent clients (closed loop, a warm-up then a `BENCH_SECONDS` window): ops/s, p50
//!   and p99 latency;
//! - LIST of 10,000 pods, three ways: consistent (served from the watch cache once it has
//!   caught up with the store's current revision, upstream's consistent read from cache),
//!   `resourceVersion=0` (from the watch cache as it is), and paged with `limit=500` (every
//!   page read from the store at the first page's revision, following `continue` through all
//!   10,000, so the store's list path is measured): p50 and worst of `LIST_RUNS` lists;
//! - 1,000 concurrent watchers on one namespace while `WATCH_EVENTS` pods are created: every
//!   watcher must see every event; the time until the last watcher saw the last event.
//!
//! It prints a Markdown table and whether the targets hold: create p99 ≤ 10 ms at 64
//! clients, consistent LIST 10k ≤ 50 ms, no watcher misses an event.
//!
//! Run: `cargo bench --bench api` (a few minutes; `BENCH_SECONDS=1` for a smoke test).

mod common;

common::real_processes_main!("api");

#[cfg(not(madsim))]
mod bench {
    use std::collections::BTreeSet;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use rkube::api::core::{Namespace, Pod};
    use rkube::client::{Api, Client, ClientConfig, Event, ListParams};
    use rkube::platform::time::Clock;

    use crate::common::{wait_ready, Stack};

    /// Concurrent clients of the create, get and update workloads.
    const CLIENTS: [usize; 3] = [1, 16, 64];
    const DEFAULT_BENCH_SECONDS: u64 = 5;
    const WARMUP_SECONDS: u64 = 1;
    /// Pods listed by the LIST workload, and how many lists are timed.
    const LIST_PODS: usize = 10_000;
    const LIST_RUNS: usize = 10;
    /// Concurrent watchers, and the pods created while they watch.
    const WATCHERS: usize = 1_000;
    const WATCH_EVENTS: usize = 200;
    /// How long every watcher may take to see every event.
    const WATCH_DEADLINE_SECONDS: u64 = 60;
    const TARGET_CREATE_P99_MS: f64 = 10.0;
    const TARGET_LIST_MS: f64 = 50.0;
    /// Page size of the paged LIST.
    const LIST_PAGE: usize = 500;

    fn seconds() -> u64 {
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_BENCH_SECONDS)
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i]
    }

    fn pod(name: &str) -> Pod {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
        }))
        .expect("pod");
        p.metadata.name = name.to_string();
        p.metadata.labels.insert("app".into(), "bench".into());
        p
    }

    /// One measured workload.
    struct Row {
        name: String,
        ops_per_s: f64,
        p50_ms: f64,
        p99_ms: f64,
        /// Requests in the window that failed (not counted in ops/s or the latencies).
        failed: usize,
    }

    /// What a closed loop measured: ops/s, sorted latencies (ms), failed requests.
    type Measured = (f64, Vec<f64>, usize);

    /// Runs `clients` closed loops of `op(client index, iteration)` for the window.
    async fn closed_loop<F, Fut>(clients: usize, op: F) -> Measured
    where
        F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let op = Arc::new(op);
        let start = Instant::now();
        let warm_end = start + Duration::from_secs(WARMUP_SECONDS);
        let end = warm_end + Duration::from_secs(seconds());
        let lat = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (op, lat, failed) = (op.clone(), lat.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        return;
                    }
                    let ok = op(c, i).await;
                    i += 1;
                    let done = Instant::now();
                    let counted = t0 >= warm_end && done <= end;
                    if counted && ok {
                        lat.lock()
                            .unwrap()
                            .push(done.duration_since(t0).as_secs_f64() * 1000.0);
                    } else if counted {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let mut l = std::mem::take(&mut *lat.lock().unwrap());
        l.sort_by(|a, b| a.total_cmp(b));
        let failed = failed.load(Ordering::Relaxed);
        (l.len() as f64 / seconds() as f64, l, failed)
    }

    fn row(name: String, (ops, lat, failed): Measured) -> Row {
        Row {
            name,
            ops_per_s: ops,
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
            failed,
        }
    }

    async fn crud(client: &Client, rows: &mut Vec<Row>) -> f64 {
        let mut create_p99_64 = f64::NAN;
        for (round, &n) in CLIENTS.iter().enumerate() {
            let ns = format!("crud-{n}");
            let mut nso = Namespace::default();
            nso.metadata.name = ns.clone();
            Api::<Namespace>::all(client)
                .create(&nso)
                .await
                .expect("namespace");
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            let create = {
                let pods = pods.clone();
                closed_loop(n, move |c, i| {
                    let pods = pods.clone();
                    async move {
                        pods.create(&pod(&format!("p-{round}-{c}-{i}")))
                            .await
                            .is_ok()
                    }
                })
                .await
            };
            let r = row(format!("create pod, {n} clients"), create);
            if n == 64 {
                create_p99_64 = r.p99_ms;
            }
            rows.push(r);
            // Every client reads and updates its own pod.
            for c in 0..n {
                pods.create(&pod(&format!("own-{c}")))
                    .await
                    .expect("own pod");
            }
            let get = {
                let pods = pods.clone();
                closed_loop(n, move |c, _| {
                    let pods = pods.clone();
                    async move { pods.get(&format!("own-{c}")).await.is_ok() }
                })
                .await
            };
            rows.push(row(format!("get pod, {n} clients"), get));
            let latest: Arc<Vec<Mutex<Option<Pod>>>> =
                Arc::new((0..n).map(|_| Mutex::new(None)).collect());
            let update = {
                let (pods, latest) = (pods.clone(), latest.clone());
                closed_loop(n, move |c, i| {
                    let (pods, latest) = (pods.clone(), latest.clone());
                    async move {
                        let current = latest[c].lock().unwrap().clone();
                        let mut p = match current {
                            Some(p) => p,
                            None => match pods.get(&format!("own-{c}")).await {
                                Ok(p) => p,
                                Err(_) => return false,
                            },
                        };
                        p.metadata.labels.insert("round".into(), i.to_string());
                        match pods.replace(&p).await {
                            Ok(new) => {
                                *latest[c].lock().unwrap() = Some(new);
                                true
                            }
                            Err(_) => {
                                // Reread before the next try: the copy may be stale now.
                                *latest[c].lock().unwrap() = None;
                                false
                            }
                        }
                    }
                })
                .await
            };
            rows.push(row(format!("update pod (PUT), {n} clients"), update));
        }
        create_p99_64
    }

    async fn fill(client: &Client, ns: &str, count: usize) {
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (pods, next) = (pods.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    pods.create(&pod(&format!("l-{i:05}")))
                        .await
                        .expect("create");
                }
            }));
        }
        for t in tasks {
            t.await.expect("filler");
        }
    }

    /// Every page of the `list` namespace's pods: one request when `limit` is 0, else pages
    /// of `limit` following `continue` to the end (the later pages at the first one's
    /// revision). Also the milliseconds spent waiting for the API server's answers, whole:
    /// the client's own decoding of the pages (to find the next token) is not the server's
    /// latency.
    async fn list_pages(client: &Client, rv: &str, limit: usize) -> (f64, Vec<serde_json::Value>) {
        let mut pages = Vec::new();
        let mut token = String::new();
        let mut waited_ms = 0.0;
        loop {
            let mut path = format!("/api/v1/namespaces/list/pods?resourceVersion={rv}");
            if limit > 0 {
                path += &format!("&limit={limit}&continue={token}");
            }
            let t0 = Instant::now();
            let bytes = client
                .request(hyper::Method::GET, &path, None)
                .await
                .expect("list");
            waited_ms += t0.elapsed().as_secs_f64() * 1000.0;
            let page: serde_json::Value = serde_json::from_slice(&bytes).expect("a list");
            token = page["metadata"]["continue"]
                .as_str()
                .unwrap_or("")
                .to_string();
            pages.push(page);
            if token.is_empty() {
                return (waited_ms, pages);
            }
            assert!(pages.len() <= LIST_PODS, "a paged list that never ends");
        }
    }

    async fn list(client: &Client, rows: &mut Vec<Row>) -> f64 {
        let mut nso = Namespace::default();
        nso.metadata.name = "list".into();
        Api::<Namespace>::all(client)
            .create(&nso)
            .await
            .expect("namespace");
        fill(client, "list", LIST_PODS).await;
        let mut consistent_p50 = 0.0f64;
        let ways = [
            ("consistent", "", 0),
            ("resourceVersion=0 (cache)", "0", 0),
            ("paged, limit=500 (store)", "", LIST_PAGE),
        ];
        for (label, rv, page) in ways {
            let mut times = Vec::new();
            for _ in 0..LIST_RUNS {
                let (ms, pages) = list_pages(client, rv, page).await;
                let listed: usize = pages
                    .iter()
                    .map(|p| p["items"].as_array().map_or(0, Vec::len))
                    .sum();
                assert_eq!(listed, LIST_PODS, "every pod listed");
                times.push(ms);
            }
            times.sort_by(|a, b| a.total_cmp(b));
            if label == "consistent" {
                consistent_p50 = percentile(&times, 0.5);
            }
            rows.push(Row {
                // Ten runs: the last column is the slowest of them, not a p99.
                name: format!("LIST {LIST_PODS} pods, {label} (p50; max of {LIST_RUNS})"),
                ops_per_s: 1000.0 / percentile(&times, 0.5),
                p50_ms: percentile(&times, 0.5),
                p99_ms: *times.last().expect("runs"),
                failed: 0,
            });
        }
        consistent_p50
    }

    /// Returns (watchers that saw every event, seconds until the last saw the last event).
    async fn watchers(client: &Client) -> (usize, f64) {
        let mut nso = Namespace::default();
        nso.metadata.name = "watch".into();
        Api::<Namespace>::all(client)
            .create(&nso)
            .await
            .expect("namespace");
        let pods: Api<Pod> = Api::namespaced(client, "watch");
        let rv = pods
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version;
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..WATCHERS {
            let (pods, rv, started, stop) =
                (pods.clone(), rv.clone(), started.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let p = ListParams {
                    resource_version: rv,
                    timeout_secs: Some(WATCH_DEADLINE_SECONDS + 30),
                    ..Default::default()
                };
                let mut stream = pods.watch(&p).await.expect("watch");
                started.fetch_add(1, Ordering::Relaxed);
                let mut seen = BTreeSet::new();
                while seen.len() < WATCH_EVENTS && !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                        Ok(Some(Ok(Event::Added(p)))) => {
                            seen.insert(p.metadata.name);
                        }
                        Ok(Some(Ok(_))) | Err(_) => {}
                        Ok(None) | Ok(Some(Err(_))) => break,
                    }
                }
                (seen.len(), Instant::now())
            }));
        }
        while started.load(Ordering::Relaxed) < WATCHERS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t0 = Instant::now();
        for i in 0..WATCH_EVENTS {
            pods.create(&pod(&format!("w-{i:04}")))
                .await
                .expect("create");
        }
        let deadline = tokio::spawn({
            let stop = stop.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(WATCH_DEADLINE_SECONDS)).await;
                stop.store(true, Ordering::Relaxed);
            }
        });
        let mut complete = 0;
        let mut last = t0;
        for t in tasks {
            let (n, at) = t.await.expect("watcher");
            if n == WATCH_EVENTS {
                complete += 1;
                last = last.max(at);
            }
        }
        deadline.abort();
        (complete, last.duration_since(t0).as_secs_f64())
    }

    pub fn main() -> ExitCode {
        let stack = Stack::start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let cfg = ClientConfig::insecure(&stack.url);
            let client = Client::new(&cfg, Clock::new()).expect("client");
            wait_ready(&client).await;
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            println!("# rkube API server benchmark ({}s windows; load average at start: {})", seconds(), load.trim());
            let mut rows = Vec::new();
            let create_p99 = crud(&client, &mut rows).await;
            let list_ms = list(&client, &mut rows).await;
            let (complete, secs) = watchers(&client).await;
            println!();
            println!("| workload | ops/s | p50 ms | p99 ms | failed |");
            println!("|---|---:|---:|---:|---:|");
            for r in &rows {
                println!(
                    "| {} | {:.0} | {:.2} | {:.2} | {} |",
                    r.name, r.ops_per_s, r.p50_ms, r.p99_ms, r.failed
                );
            }
            println!(
                "| {WATCHERS} watchers × {WATCH_EVENTS} pod creations | every event seen by {complete}/{WATCHERS} | last delivery after {secs:.2} s | | |"
            );
            println!();
            let checks = [
                (format!("create p99 at 64 clients {create_p99:.2} ms ≤ {TARGET_CREATE_P99_MS} ms"), create_p99 <= TARGET_CREATE_P99_MS),
                (format!("consistent LIST of {LIST_PODS} pods p50 {list_ms:.1} ms ≤ {TARGET_LIST_MS} ms"), list_ms <= TARGET_LIST_MS),
                (format!("{complete}/{WATCHERS} watchers saw all {WATCH_EVENTS} events"), complete == WATCHERS),
            ];
            for (what, ok) in &checks {
                println!("target {}: {what}", if *ok { "met" } else { "MISSED" });
            }
            if checks.iter().all(|(_, ok)| *ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        })
    }
}
