//! Scheduler throughput in the style of upstream's scheduler_perf `SchedulingBasic`: nodes
//! with 4 CPUs, 32 GiB and 110 pods each; pods requesting 100m CPU and 500 MiB.
//!
//! - core: the pure scheduling cycle plus the assumption, on 1,000 and 5,000 nodes, for
//!   10,000 and 30,000 pods (after 1,000 initial pods), one thread; resources only, with a
//!   zone spread constraint, and with hostname anti-affinity;
//! - end to end: `rkube etcd` + `rkube apiserver` + `rkube scheduler` (this build, release):
//!   `E2E_NODES` nodes and `E2E_PODS` pending pods are created with the scheduler stopped, then
//!   it starts; pods/s between the first and the last binding.
//!
//! Targets: ≥ 10,000 pods/s for the core at 5,000 nodes, ≥ 1,000 pods/s end to end.
//! Run: `cargo bench --bench scheduler` (`BENCH_ONLY=core` skips the end-to-end part).

mod common;

common::real_processes_main!("scheduler");

#[cfg(not(madsim))]
mod bench {
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rkube::api::{Namespace, Node, Pod};
    use rkube::client::{Api, Client, ClientConfig, ListParams, Patch};
    use rkube::platform::time::Clock;
    use rkube::scheduler::framework::Framework;
    use rkube::scheduler::snapshot::{Cache, PodInfo};
    use serde_json::json;

    use crate::common::{wait_ready, Proc, Stack};

    /// What the measured pods carry besides their requests.
    #[derive(Clone, Copy, PartialEq)]
    enum Shape {
        ResourcesOnly,
        /// Zone spread, maxSkew 1, DoNotSchedule, over pods of the same app.
        Spread,
        /// Required anti-affinity on the hostname within one of ten apps.
        AntiAffinity,
    }

    const CORE_CASES: [(Shape, usize, usize); 5] = [
        (Shape::ResourcesOnly, 1_000, 10_000),
        (Shape::ResourcesOnly, 5_000, 10_000),
        (Shape::ResourcesOnly, 5_000, 30_000),
        (Shape::Spread, 5_000, 10_000),
        (Shape::AntiAffinity, 5_000, 10_000),
    ];
    const INIT_PODS: usize = 1_000;
    const E2E_NODES: usize = 1_000;
    const E2E_PODS: usize = 10_000;
    const E2E_DEADLINE_SECONDS: u64 = 300;
    const TARGET_CORE_PODS_PER_S: f64 = 10_000.0;
    const TARGET_E2E_PODS_PER_S: f64 = 1_000.0;
    /// Upstream's CI floor for `SchedulingBasic/5000Nodes_10000Pods` (pods/s), from
    /// test/integration/scheduler_perf/misc/performance-config.yaml.
    const UPSTREAM_THRESHOLD_PODS_PER_S: f64 = 680.0;

    fn node(i: usize) -> Node {
        serde_json::from_value(json!({"metadata": {"name": format!("node-{i:05}"),
            "labels": {"kubernetes.io/hostname": format!("node-{i:05}"),
                "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
            "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"}}}))
        .expect("node")
    }

    fn pod(ns: &str, i: usize) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": format!("pod-{i:06}"), "namespace": ns},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}),
        )
        .expect("pod")
    }

    fn shaped(i: usize, shape: Shape) -> Pod {
        let mut p = pod("b", i);
        let app = format!("app-{}", i % 10);
        p.metadata.labels.insert("app".into(), app.clone());
        let selector = json!({"matchLabels": {"app": app}});
        match shape {
            Shape::ResourcesOnly => {}
            Shape::Spread => {
                p.spec.topology_spread_constraints = vec![json!({"maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector})];
            }
            Shape::AntiAffinity => {
                p.spec.affinity = Some(json!({"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}}));
            }
        }
        p
    }

    /// Places `count` pods on `nodes` nodes through the pure core; pods/s.
    fn core(shape: Shape, nodes: usize, count: usize) -> f64 {
        let mut cache = Cache::default();
        for i in 0..nodes {
            cache.upsert_node(Arc::new(node(i)));
        }
        let fw = Framework::with_defaults();
        let pods: Vec<Arc<Pod>> = (0..INIT_PODS + count)
            .map(|i| {
                Arc::new(if i < INIT_PODS {
                    pod("b", i)
                } else {
                    shaped(i, shape)
                })
            })
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut start, mut placed) = (String::new(), 0);
        let mut t0 = Instant::now();
        for (i, p) in pods.into_iter().enumerate() {
            if i == INIT_PODS {
                t0 = Instant::now();
            }
            let info = Arc::new(PodInfo::new(p));
            let (r, next) = fw.schedule(&info, cache.snapshot(), &start, &mut random);
            start = next;
            let node = r.expect("room for every pod").node;
            cache.assume(info, &node);
            placed += usize::from(i >= INIT_PODS);
        }
        placed as f64 / t0.elapsed().as_secs_f64()
    }

    async fn create_all<T, F>(count: usize, make: F)
    where
        T: std::future::Future<Output = ()> + Send,
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (make, next) = (make.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    make(i).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("creator");
        }
    }

    async fn pending(client: &Client) -> usize {
        let pods: Api<Pod> = Api::namespaced(client, "perf");
        let p = ListParams {
            field_selector: "spec.nodeName=".into(),
            ..ListParams::default()
        };
        pods.list(&p)
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX)
    }

    /// Pods/s between the first and the last binding, end to end.
    async fn end_to_end(client: &Client, stack: &Stack) -> f64 {
        let mut ns = Namespace::default();
        ns.metadata.name = "perf".into();
        Api::<Namespace>::all(client)
            .create(&ns)
            .await
            .expect("namespace");
        let c = client.clone();
        create_all(E2E_NODES, move |i| {
            let nodes: Api<Node> = Api::all(&c);
            async move {
                let n = node(i);
                nodes.create(&n).await.expect("node");
                let st = Patch::Merge(json!({"status": n.status}));
                nodes
                    .patch_status(&n.metadata.name, &st)
                    .await
                    .expect("status");
            }
        })
        .await;
        let c = client.clone();
        create_all(E2E_PODS, move |i| {
            let pods: Api<Pod> = Api::namespaced(&c, "perf");
            async move {
                pods.create(&pod("perf", i)).await.expect("pod");
            }
        })
        .await;
        let args = ["scheduler", "--master", &stack.url, "--leader-elect=false"];
        let _scheduler = Proc::spawn(stack.dir.path(), "scheduler", &args);
        let deadline = Instant::now() + Duration::from_secs(E2E_DEADLINE_SECONDS);
        let mut first = None;
        loop {
            let left = pending(client).await;
            let now = Instant::now();
            if left < E2E_PODS && first.is_none() {
                first = Some((now, E2E_PODS - left));
            }
            if left == 0 {
                let (t, done) = first.expect("bindings started");
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                return (E2E_PODS - done) as f64 / secs;
            }
            assert!(now < deadline, "{left} pods still pending");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn main() -> ExitCode {
        println!("# rkube scheduler benchmark (SchedulingBasic shape)");
        println!();
        println!("| case | pods/s |");
        println!("|---|---:|");
        let mut core_5000 = f64::INFINITY;
        for (shape, nodes, pods) in CORE_CASES {
            let rate = core(shape, nodes, pods);
            if nodes == 5_000 && shape == Shape::ResourcesOnly {
                core_5000 = core_5000.min(rate);
            }
            let what = match shape {
                Shape::ResourcesOnly => "resources only",
                Shape::Spread => "zone spread (maxSkew 1)",
                Shape::AntiAffinity => "hostname anti-affinity (10 apps)",
            };
            println!(
                "| core, {what}, {nodes} nodes, {pods} pods (after {INIT_PODS}) | {rate:.0} |"
            );
        }
        if std::env::var("BENCH_ONLY").as_deref() == Ok("core") {
            let ok = core_5000 >= TARGET_CORE_PODS_PER_S;
            println!(
                "target {}: core at 5000 nodes {core_5000:.0} pods/s ≥ {TARGET_CORE_PODS_PER_S}",
                if ok { "met" } else { "MISSED" }
            );
            return if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        let stack = Stack::start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let e2e = rt.block_on(async {
            let client =
                Client::new(&ClientConfig::insecure(&stack.url), Clock::new()).expect("client");
            wait_ready(&client).await;
            end_to_end(&client, &stack).await
        });
        println!("| end to end, {E2E_NODES} nodes, {E2E_PODS} pods | {e2e:.0} |");
        println!();
        println!("upstream scheduler_perf CI floor, SchedulingBasic/5000Nodes_10000Pods: {UPSTREAM_THRESHOLD_PODS_PER_S} pods/s");
        let checks = [
            (
                format!("core at 5000 nodes {core_5000:.0} pods/s ≥ {TARGET_CORE_PODS_PER_S}"),
                core_5000 >= TARGET_CORE_PODS_PER_S,
            ),
            (
                format!("end to end {e2e:.0} pods/s ≥ {TARGET_E2E_PODS_PER_S}"),
                e2e >= TARGET_E2E_PODS_PER_S,
            ),
        ];
        for (what, ok) in &checks {
            println!("target {}: {what}", if *ok { "met" } else { "MISSED" });
        }
        if checks.iter().all(|(_, ok)| *ok) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
