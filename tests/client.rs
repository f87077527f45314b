//! The client library against real `rkube etcd` + `rkube apiserver` processes: typed CRUD
//! with the server's errors, informers that converge through API server failover and
//! re-lists, and leader election that hands over without two leaders.

#![cfg(not(madsim))]

mod common;

use std::time::Duration;

use common::apiserver::ApiServer;
use common::{require_etcdctl, wait_for_async, Cluster};
use rkube::api::coordination::Lease;
use rkube::api::core::{ConfigMap, Namespace, Pod};
use rkube::client::informer::{self, Change, InformerConfig};
use rkube::client::leader::{self, ElectionConfig, Leadership};
use rkube::client::{Api, Client, ClientConfig, DeleteParams, ListParams, Patch};
use rkube::platform::task::shutdown_pair;
use rkube::platform::time::Clock;
use serde_json::json;

fn client(servers: &[&str]) -> Client {
    let cfg = ClientConfig {
        servers: servers.iter().map(|s| s.to_string()).collect(),
        request_timeout_ms: 5_000,
        ..Default::default()
    };
    Client::new(&cfg, Clock::new()).expect("client")
}

fn config_map(name: &str, app: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = name.into();
    cm.metadata.namespace = "team-a".into();
    cm.metadata.labels.insert("app".into(), app.into());
    cm.data.insert("k".into(), "1".into());
    cm
}

async fn ensure_namespace(c: &Client) {
    let mut ns = Namespace::default();
    ns.metadata.name = "team-a".into();
    Api::<Namespace>::all(c)
        .create(&ns)
        .await
        .expect("namespace");
}

#[test]
fn typed_crud_with_the_servers_errors() {
    if !require_etcdctl() {
        return;
    }
    let store = Cluster::single();
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    rkube::platform::block_on(async {
        let c = client(&[&api.url()]);
        ensure_namespace(&c).await;
        let cms: Api<ConfigMap> = Api::namespaced(&c, "team-a");
        let created = cms.create(&config_map("one", "web")).await.expect("create");
        assert!(!created.metadata.uid.is_empty());
        let again = cms.create(&config_map("one", "web")).await.unwrap_err();
        assert_eq!(again.code(), Some(409), "{again}");

        // A replace from a stale copy is a conflict; from the current one it succeeds.
        let mut fresh = cms.get("one").await.expect("get");
        fresh.data.insert("k".into(), "2".into());
        let updated = cms.replace(&fresh).await.expect("replace");
        let mut stale = created.clone();
        stale.data.insert("k".into(), "3".into());
        assert!(cms.replace(&stale).await.unwrap_err().is_conflict());
        assert_eq!(updated.data["k"], "2");

        let patched = cms
            .patch("one", &Patch::Merge(json!({"data": {"extra": "x"}})))
            .await
            .expect("patch");
        assert_eq!(patched.data["extra"], "x");
        cms.create(&config_map("two", "db")).await.expect("create");
        let web = cms
            .list(&ListParams::labels("app=web"))
            .await
            .expect("list");
        let names: Vec<_> = web.items.iter().map(|c| c.metadata.name.as_str()).collect();
        assert_eq!(names, ["one"]);
        assert!(!web.metadata.resource_version.is_empty());

        // Pods: create, bind through the subresource, patch the status.
        let pods: Api<Pod> = Api::namespaced(&c, "team-a");
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("pod");
        pod.metadata.namespace = "team-a".into();
        pods.create(&pod).await.expect("create pod");
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
        pods.create_subresource("p", "binding", &binding)
            .await
            .expect("bind");
        let running = Patch::Merge(json!({"status": {"phase": "Running"}}));
        let p = pods.patch_status("p", &running).await.expect("status");
        assert_eq!(p.spec.node_name, "n1");
        assert_eq!(p.status.phase, "Running");

        cms.delete("two", &DeleteParams::default())
            .await
            .expect("delete");
        assert!(cms.get("two").await.unwrap_err().is_not_found());
        let mut elsewhere = config_map("x", "y");
        elsewhere.metadata.namespace.clear();
        let missing = Api::<ConfigMap>::namespaced(&c, "ghost")
            .create(&elsewhere)
            .await
            .unwrap_err();
        assert!(missing.is_not_found(), "{missing}");

        // A consistent list (served from the watch cache once it has caught up with the
        // store) shows every write acknowledged before it, and its resourceVersion is no older
        // than theirs; a `resourceVersion=0` list may be older but never goes back.
        let mut last_rv = 0;
        for i in 0..20 {
            let made = cms
                .create(&config_map(&format!("ryw-{i}"), "ryw"))
                .await
                .expect("create");
            let listed = cms
                .list(&ListParams::labels("app=ryw"))
                .await
                .expect("list");
            assert_eq!(listed.items.len(), i + 1, "list after create {i}");
            let rv: i64 = listed.metadata.resource_version.parse().expect("numeric");
            let made_rv: i64 = made.metadata.resource_version.parse().expect("numeric");
            assert!(
                rv >= made_rv && rv >= last_rv,
                "{rv} < {made_rv} or {last_rv}"
            );
            last_rv = rv;
        }
        // A `resourceVersion=0` list (from the watch cache, at once) may trail the writes, never
        // shows more than was written, and never goes back; the cache catches up with all 20.
        let any = ListParams {
            resource_version: "0".into(),
            ..ListParams::labels("app=ryw")
        };
        let mut cached_rv = 0;
        let mut names = wait_for_async(
            10,
            "the resourceVersion=0 list to show all 20",
            async || {
                let listed = cms.list(&any).await.expect("list rv=0");
                let rv: i64 = listed.metadata.resource_version.parse().expect("numeric");
                assert!(
                    rv >= cached_rv,
                    "a resourceVersion=0 list went back: {rv} < {cached_rv}"
                );
                cached_rv = rv;
                let n = listed.items.len();
                assert!(n <= 20, "{n} config maps listed");
                let names = listed.items.into_iter().map(|cm| cm.metadata.name);
                (n == 20).then(|| names.collect::<Vec<_>>())
            },
        )
        .await;
        names.sort();
        let mut want: Vec<String> = (0..20).map(|i| format!("ryw-{i}")).collect();
        want.sort();
        assert_eq!(names, want);
    });
}

#[test]
fn informers_converge_across_api_server_failover() {
    if !require_etcdctl() {
        return;
    }
    let store = Cluster::single();
    let url = store.member(0).client_url();
    let mut first = ApiServer::start(&url, store.dir());
    let second = ApiServer::start(&url, store.dir());
    rkube::platform::block_on(async {
        let writer = client(&[&second.url()]);
        ensure_namespace(&writer).await;
        let cms: Api<ConfigMap> = Api::namespaced(&writer, "team-a");
        for i in 0..5 {
            cms.create(&config_map(&format!("before-{i}"), "web"))
                .await
                .expect("create");
        }
        // The informer talks to the first server, with the second as its fallback.
        let reader = client(&[&first.url(), &second.url()]);
        let (_trigger, shutdown) = shutdown_pair();
        let cfg = InformerConfig {
            params: ListParams::labels("app=web"),
            resync_ms: 0,
        };
        let (cache, mut changes) = informer::start(Api::<ConfigMap>::all(&reader), cfg, shutdown);
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 5 {
            match changes.recv().await.expect("informer runs") {
                Change::Added(o) => seen.insert(o.metadata.name.clone()),
                _ => false,
            };
        }
        assert!(cache.has_synced());

        // The first server dies; writes continue through the second; the informer fails
        // over and ends with exactly what the store holds.
        first.kill();
        for i in 0..5 {
            cms.create(&config_map(&format!("after-{i}"), "web"))
                .await
                .expect("create");
        }
        cms.create(&config_map("not-web", "db"))
            .await
            .expect("create");
        cms.delete("before-0", &DeleteParams::default())
            .await
            .expect("delete");
        let want: Vec<String> = cms
            .list(&ListParams::labels("app=web"))
            .await
            .expect("list")
            .items
            .iter()
            .map(|c| format!("team-a/{}", c.metadata.name))
            .collect();
        let clock = Clock::new();
        let converged = clock
            .timeout(Duration::from_secs(30), async {
                loop {
                    let have: Vec<String> = cache
                        .list()
                        .iter()
                        .map(|c| format!("{}/{}", c.metadata.namespace, c.metadata.name))
                        .collect();
                    if have == want {
                        return;
                    }
                    changes.recv().await.expect("the informer keeps running");
                }
            })
            .await;
        assert!(
            converged.is_ok(),
            "the informer never matched the store: {want:?}"
        );
    });
}

#[test]
fn leader_election_hands_over_without_two_leaders() {
    if !require_etcdctl() {
        return;
    }
    let store = Cluster::single();
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    rkube::platform::block_on(async {
        let c = client(&[&api.url()]);
        let clock = Clock::new();
        let fast = |id: &str| ElectionConfig {
            identity: id.to_string(),
            lease_duration_ms: 3_000,
            renew_deadline_ms: 2_000,
            retry_period_ms: 300,
        };
        let leases: Api<Lease> = Api::namespaced(&c, "kube-system");
        let a = Leadership::new(fast("a"), clock.clone());
        let b = Leadership::new(fast("b"), clock.clone());
        let (stop_a, shutdown_a) = shutdown_pair();
        let (stop_b, shutdown_b) = shutdown_pair();
        let (_keep, mut waiting) = shutdown_pair();
        rkube::platform::task::spawn(leader::run(leases.clone(), "demo", a.clone(), shutdown_a));
        rkube::platform::task::spawn(leader::run(leases.clone(), "demo", b.clone(), shutdown_b));
        let first_is_a = clock
            .timeout(Duration::from_secs(20), async {
                loop {
                    if a.is_leader() || b.is_leader() {
                        return a.is_leader();
                    }
                    clock.sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .expect("someone leads");
        // Dropping a trigger stops its elector too: keep the other one alive.
        let (leader, other, stop, _keep_other) = if first_is_a {
            (a.clone(), b.clone(), stop_a, stop_b)
        } else {
            (b.clone(), a.clone(), stop_b, stop_a)
        };
        let successor = if first_is_a { "b" } else { "a" };
        // Both run for a while: never two leaders.
        for _ in 0..40 {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            clock.sleep(Duration::from_millis(50)).await;
        }
        // The leader stops; the other takes over within about a lease duration.
        stop.trigger();
        let took_over = clock
            .timeout(
                Duration::from_secs(10),
                other.wait_until_leader(&mut waiting),
            )
            .await;
        assert!(
            took_over.is_ok_and(|led| led),
            "{successor} never took over"
        );
        assert!(!leader.is_leader());
        let lease = leases.get("demo").await.expect("lease");
        assert_eq!(lease.spec.holder_identity.as_deref(), Some(successor));
        assert!(lease.spec.lease_transitions.unwrap_or(0) >= 1);
    });
}

#[test]
fn informers_resync_every_object_periodically() {
    if !require_etcdctl() {
        return;
    }
    let store = Cluster::single();
    let api = ApiServer::start(&store.member(0).client_url(), store.dir());
    rkube::platform::block_on(async {
        let c = client(&[&api.url()]);
        ensure_namespace(&c).await;
        let cms: Api<ConfigMap> = Api::namespaced(&c, "team-a");
        cms.create(&config_map("steady", "web"))
            .await
            .expect("create");
        let (_trigger, shutdown) = shutdown_pair();
        let cfg = InformerConfig {
            params: ListParams::labels("app=web"),
            resync_ms: 300,
        };
        let (_cache, mut changes) = informer::start(cms.clone(), cfg, shutdown);
        let clock = Clock::new();
        let listed = changes.recv().await.expect("informer runs");
        assert!(
            matches!(listed, Change::Added(_)),
            "the list delivers the object first"
        );
        let listed_at = clock.now_ms();
        // Nothing changes, yet the object is delivered again (old == new) every period —
        // the first time a period after the list, not at once.
        let resynced = clock
            .timeout(Duration::from_secs(10), async {
                let mut resyncs = 0;
                while resyncs < 2 {
                    match changes.recv().await {
                        Some(Change::Updated(old, new)) => {
                            assert_eq!(
                                old.metadata.resource_version,
                                new.metadata.resource_version
                            );
                            if resyncs == 0 {
                                let after = clock.now_ms() - listed_at;
                                assert!(after >= 200, "first resync {after} ms after the list");
                            }
                            resyncs += 1;
                        }
                        Some(_) => {}
                        None => panic!("the informer stopped"),
                    }
                }
            })
            .await;
        assert!(resynced.is_ok(), "no resync within 10 s");
    });
}
