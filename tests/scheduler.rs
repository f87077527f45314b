//! `rkube scheduler` against real `rkube etcd` + `rkube apiserver` processes: pods are bound
//! within each node's room, the unschedulable one gets upstream's FailedScheduling text (as an
//! event `kubectl` shows and as its PodScheduled condition) and is placed once a node is
//! added, and when the leading replica is killed the other takes over. A pod of a higher
//! PriorityClass preempts a lower-priority one.

#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::apiserver::{store_and_api_server, ApiServer};
use common::{wait_for_async, Process, RKUBE};
use rkube::api::coordination::Lease;
use rkube::api::core::{Event, Namespace, Node, Pod};
use rkube::api::quantity;
use rkube::client::{Api, Client, ClientConfig, ListParams, Patch};
use rkube::platform::time::Clock;
use serde_json::json;

/// A `rkube scheduler` replica named `identity`, logging to `dir` (killed on drop, its log
/// tail printed if the test fails).
fn scheduler(api_url: &str, identity: &str, dir: &Path) -> Process {
    let mut cmd = Command::new(RKUBE);
    cmd.args(["scheduler", "--master", api_url, "--identity", identity]);
    let log = dir.join(format!("scheduler-{identity}.log"));
    Process::spawn(&format!("scheduler {identity}"), &mut cmd, &log)
}

fn client(url: &str) -> Client {
    Client::new(&ClientConfig::insecure(url), Clock::new()).expect("client")
}

async fn add_node(c: &Client, name: &str, cpu: &str, tainted: bool) {
    let mut node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    if tainted {
        node.spec.taints = serde_json::from_value(
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        )
        .unwrap();
    }
    let nodes: Api<Node> = Api::all(c);
    nodes.create(&node).await.expect("create node");
    let status = json!({"status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}});
    nodes
        .patch_status(name, &Patch::Merge(status))
        .await
        .expect("node status");
}

async fn add_pod(c: &Client, name: &str, cpu: &str) {
    add_pod_of_class(c, name, cpu, "").await;
}

/// A pod requesting `cpu`, of PriorityClass `class` (none if empty).
async fn add_pod_of_class(c: &Client, name: &str, cpu: &str, class: &str) {
    let mut pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "sched"},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}))
        .unwrap();
    pod.spec.priority_class_name = class.to_string();
    Api::<Pod>::namespaced(c, "sched")
        .create(&pod)
        .await
        .expect("create pod");
}

async fn pods(c: &Client) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(c, "sched");
    api.list(&ListParams::default()).await.expect("list").items
}

async fn holder(c: &Client) -> String {
    let leases: Api<Lease> = Api::namespaced(c, "kube-system");
    match leases.get("kube-scheduler").await {
        Ok(l) => l.spec.holder_identity.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[test]
fn scheduler_binds_within_room_reports_and_hands_over() {
    let Some((store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    let mut replicas = BTreeMap::from([
        ("s1", scheduler(&api.url(), "s1", store.dir())),
        ("s2", scheduler(&api.url(), "s2", store.dir())),
    ]);
    rkube::platform::block_on(async {
        let c = client(&api.url());
        create_namespace(&c, "sched").await;
        add_node(&c, "n1", "2", false).await;
        add_node(&c, "n2", "2", false).await;
        add_node(&c, "n3", "8", true).await;
        for i in 0..5 {
            add_pod(&c, &format!("p{i}"), "1").await;
        }

        // Four fit (two per untainted node); the fifth fits nowhere.
        let all = wait_for_async(30, "four pods bound", async || {
            let ps = pods(&c).await;
            (ps.iter().filter(|p| !p.spec.node_name.is_empty()).count() == 4).then_some(ps)
        })
        .await;
        let mut cpu_by_node = BTreeMap::<String, i64>::new();
        for p in all.iter().filter(|p| !p.spec.node_name.is_empty()) {
            let cpu = quantity::parse(&p.spec.containers[0].resources.requests["cpu"]).unwrap();
            *cpu_by_node.entry(p.spec.node_name.clone()).or_default() += cpu.milli_value();
        }
        assert_eq!(
            cpu_by_node,
            BTreeMap::from([("n1".into(), 2000), ("n2".into(), 2000)])
        );
        // Every pod has priority 0, so preemption finds nothing to evict either (upstream's
        // PostFilter message follows the filters').
        let want = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, \
            2 Insufficient cpu. preemption: 0/3 nodes are available: \
            1 Preemption is not helpful for scheduling, \
            2 No preemption victims found for incoming pod.";
        let pending = wait_for_async(30, "the PodScheduled=False condition", async || {
            let ps = pods(&c).await;
            let p = ps.into_iter().find(|p| p.spec.node_name.is_empty())?;
            let cond = p
                .status
                .conditions
                .iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (cond.status == "False" && cond.reason == "Unschedulable")
                .then(|| (p.clone(), cond.message.clone()))
        })
        .await;
        assert_eq!(pending.1, want);
        let events = wait_for_async(30, "the scheduler's events", async || {
            let api: Api<Event> = Api::namespaced(&c, "sched");
            let evs = api.list(&ListParams::default()).await.ok()?.items;
            let scheduled = evs.iter().filter(|e| e.reason == "Scheduled").count();
            let failed = evs
                .iter()
                .any(|e| e.reason == "FailedScheduling" && e.message == want);
            (scheduled == 4 && failed).then_some(evs)
        })
        .await;
        assert!(events.iter().all(|e| e.involved_object.kind == "Pod"));
        let shown = api.ok(&["get", "events", "-n", "sched"]);
        assert!(
            shown.contains("FailedScheduling") && shown.contains("Insufficient cpu"),
            "{shown}"
        );

        // A new node is a cluster event: the parked pod is tried again and placed there.
        add_node(&c, "n4", "2", false).await;
        let name = pending.0.metadata.name.clone();
        wait_for_async(30, "the parked pod placed on the new node", async || {
            let p = Api::<Pod>::namespaced(&c, "sched").get(&name).await.ok()?;
            (p.spec.node_name == "n4").then_some(())
        })
        .await;

        // Kill the leading replica: the other takes the lease and keeps scheduling.
        let leader = wait_for_async(30, "a lease holder", async || {
            Some(holder(&c).await).filter(|h| h == "s1" || h == "s2")
        })
        .await;
        drop(replicas.remove(leader.as_str()));
        add_pod(&c, "late", "100m").await;
        wait_for_async(45, "the other replica binds the late pod", async || {
            let p = Api::<Pod>::namespaced(&c, "sched").get("late").await.ok()?;
            (!p.spec.node_name.is_empty()).then_some(())
        })
        .await;
        assert_ne!(holder(&c).await, leader, "the lease moved");
    });
}

async fn create_namespace(c: &Client, name: &str) {
    let mut ns = Namespace::default();
    ns.metadata.name = name.into();
    Api::<Namespace>::all(c)
        .create(&ns)
        .await
        .expect("namespace");
}

#[test]
fn a_higher_priority_pod_preempts_a_lower_one() {
    let Some((store, api)) = store_and_api_server(ApiServer::start) else {
        return;
    };
    let _s = scheduler(&api.url(), "s1", store.dir());
    api.ok(&["create", "priorityclass", "high", "--value=1000"]);
    rkube::platform::block_on(async {
        let c = client(&api.url());
        create_namespace(&c, "sched").await;
        add_node(&c, "n1", "2", false).await;
        add_pod(&c, "low-a", "1").await;
        add_pod(&c, "low-b", "1").await;
        let pods_api: Api<Pod> = Api::namespaced(&c, "sched");
        wait_for_async(30, "both low pods bound", async || {
            let ps = pods(&c).await;
            (ps.iter().filter(|p| p.spec.node_name == "n1").count() == 2).then_some(())
        })
        .await;

        add_pod_of_class(&c, "high", "1", "high").await;
        let high = pods_api.get("high").await.expect("high");
        assert_eq!(high.spec.priority, Some(1000), "set from its PriorityClass");
        // Exactly one of the two priority-0 pods must go: marked, terminating, told why.
        let (victim, nominated) = wait_for_async(30, "a victim and a nomination", async || {
            let ps = pods(&c).await;
            let terminating: Vec<&Pod> = ps
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some())
                .collect();
            let high = ps.iter().find(|p| p.metadata.name == "high")?;
            let nominated = high.status.nominated_node_name.clone();
            (terminating.len() == 1 && !nominated.is_empty())
                .then(|| (terminating[0].clone(), nominated))
        })
        .await;
        assert_eq!(nominated, "n1");
        assert!(
            victim.metadata.name.starts_with("low-"),
            "{}",
            victim.metadata.name
        );
        let mark = victim
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .expect("the DisruptionTarget condition");
        assert_eq!(
            (mark.status.as_str(), mark.reason.as_str()),
            ("True", "PreemptionByScheduler")
        );
        let uid = high.metadata.uid.clone();
        wait_for_async(30, "the Preempted event", async || {
            let evs = Api::<Event>::namespaced(&c, "sched")
                .list(&ListParams::default())
                .await
                .ok()?
                .items;
            evs.into_iter().find(|e| {
                e.reason == "Preempted"
                    && e.involved_object.name == victim.metadata.name
                    && e.message == format!("Preempted by pod {uid} on node n1")
            })
        })
        .await;
        let text = api.ok(&["get", "pod", "high", "-n", "sched", "-o", "wide"]);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let row = lines.next().unwrap_or_default();
        // Columns start where the header's names do (kubectl aligns them); NODE is still
        // empty, NOMINATED NODE holds the node.
        let column = |name: &str| {
            let at = header
                .find(name)
                .unwrap_or_else(|| panic!("{name} in {text}"));
            row[at..].split_whitespace().next().unwrap_or_default()
        };
        assert_eq!(
            (column(" NODE "), column("NOMINATED NODE")),
            ("<none>", "n1"),
            "{text}"
        );

        // No kubelet here: finish the victim's termination as it would, and the preemptor
        // takes the room.
        let gone = rkube::client::DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        pods_api
            .delete(&victim.metadata.name, &gone)
            .await
            .expect("force delete");
        wait_for_async(30, "the preemptor bound to n1", async || {
            let p = pods_api.get("high").await.ok()?;
            (p.spec.node_name == "n1").then_some(())
        })
        .await;
        let left = pods(&c).await;
        let names: Vec<&str> = left.iter().map(|p| p.metadata.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    });
}
