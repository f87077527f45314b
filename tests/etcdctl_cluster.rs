//! End-to-end tests of a 3-member `rkube etcd` cluster, driven by the real `etcdctl` 3.4
//! binary and by rkube's own gRPC client: writes through followers, leader failure and
//! re-election, a restarted member catching up by snapshot transfer, and durability of every
//! acknowledged write across a kill -9 under concurrent load.
//!
//! Each test runs its own cluster on fresh loopback ports in its own temporary directory, so
//! the tests run in parallel. Without `etcdctl` they skip, unless `CI` is set.

#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{b64_str, poll, require_etcdctl, wait_until, Cluster, Member, Watcher};
use rkube::store::client::Client;
use rkube::store::DEFAULT_CATCHUP_ENTRIES;

/// All `key → value` pairs under `prefix` as `member` serves them (`s` = serializable, i.e.
/// from its local state; `l` = linearizable).
fn read_prefix(m: &Member, prefix: &str, consistency: &str) -> Option<BTreeMap<String, String>> {
    let args = [
        "get",
        prefix,
        "--prefix",
        &format!("--consistency={consistency}"),
    ];
    let out = m.ctl(&args);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len().is_multiple_of(2),
        "odd key/value output: {text}"
    );
    Some(
        lines
            .chunks(2)
            .map(|kv| (kv[0].to_string(), kv[1].to_string()))
            .collect(),
    )
}

/// The member's raft term as `endpoint status` reports it.
fn raft_term(m: &Member) -> u64 {
    let v = m.json(&["endpoint", "status"]);
    v[0]["Status"]["raftTerm"].as_u64().expect("raftTerm")
}

/// A multi-threaded tokio runtime for rkube's client (the tests themselves stay synchronous,
/// so they can block on processes and etcdctl).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Puts `keys` (key, value) through `endpoint` with `parallel` requests in flight; panics on
/// any error (used where the cluster is healthy).
fn put_all(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    keys: Vec<(String, String)>,
    parallel: usize,
) {
    let endpoint = endpoint.to_string();
    rt.block_on(async move {
        let queue = Arc::new(Mutex::new(keys));
        let mut tasks = Vec::new();
        for _ in 0..parallel {
            let queue = queue.clone();
            let mut client = Client::new(&endpoint).expect("client");
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some((k, v)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    if let Err(e) = client.put(k.as_bytes(), v.as_bytes()).await {
                        panic!("put {k} failed: {e}");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
    });
}

#[test]
fn writes_on_a_follower_are_read_on_another_member() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::start(3, &[]);
    let leader = c.wait_leader(&c.all(), 20);
    let followers: Vec<usize> = c.all().into_iter().filter(|&i| i != leader).collect();
    let (f1, f2) = (c.member(followers[0]), c.member(followers[1]));

    // Every member lists all three.
    let v = f2.json(&["member", "list"]);
    let mut ids: Vec<u64> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ID"].as_u64().unwrap())
        .collect();
    ids.sort();
    let mut want: Vec<u64> = c.members.iter().map(|m| m.id).collect();
    want.sort();
    assert_eq!(ids, want, "{v}");

    // A watch on the other follower sees the writes made on the first.
    let from = f2.revision() + 1;
    let w = Watcher::start(
        &f2.endpoint(),
        &["f/", "--prefix", &format!("--rev={from}")],
    );

    f1.put("f/written-on-follower", "v1");
    assert_eq!(
        f2.get("f/written-on-follower").as_deref(),
        Some("v1"),
        "linearizable read elsewhere"
    );
    assert_eq!(
        c.member(leader).get("f/written-on-follower").as_deref(),
        Some("v1")
    );

    // A txn through a follower.
    let out = f1.ok_stdin(
        &["txn"],
        b"value(\"f/written-on-follower\") = \"v1\"\n\nput f/txn yes\n\nput f/txn no\n\n",
    );
    assert!(out.starts_with("SUCCESS"), "{out}");
    assert_eq!(f2.get("f/txn").as_deref(), Some("yes"));

    // Leases through followers: granted on one, used and revoked on another.
    let out = f1.ok(&["lease", "grant", "60"]);
    let id = out.split_whitespace().nth(1).expect("lease id").to_string();
    f2.ok(&["put", "--lease", &id, "f/leased", "x"]);
    assert_eq!(
        f1.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(60)\n")
    );
    let ttl = f2.json(&["lease", "timetolive", &id, "--keys"]);
    assert_eq!(ttl["granted-ttl"].as_i64(), Some(60), "{ttl}");
    let keys: Vec<String> = ttl["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(b64_str)
        .collect();
    assert_eq!(keys, ["f/leased"]);
    assert_eq!(
        f2.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(f1.get("f/leased"), None);

    let out = w.wait_stdout(15, "four events", |s| s.lines().count() >= 12);
    assert_eq!(
        out,
        "PUT\nf/written-on-follower\nv1\nPUT\nf/txn\nyes\nPUT\nf/leased\nx\nDELETE\nf/leased\n\n"
    );

    // All members converge on the same revision.
    let rev = c.member(leader).revision();
    for m in &c.members {
        wait_until(10, &format!("{} to apply revision {rev}", m.name), || {
            m.revision() == rev
        });
    }
}

#[test]
fn leader_kill_elects_a_new_leader_and_the_old_one_catches_up() {
    if !require_etcdctl() {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    let old = c.wait_leader(&c.all(), 20);
    c.member(old).put("before", "kill");
    let term_before = raft_term(c.member(old));

    c.member_mut(old).kill();
    let survivors: Vec<usize> = c.all().into_iter().filter(|&i| i != old).collect();
    let new = c.wait_leader(&survivors, 20);
    assert_ne!(new, old);
    assert!(
        raft_term(c.member(new)) > term_before,
        "a new term after the election"
    );

    // Writes continue through both survivors.
    for (n, &i) in survivors.iter().enumerate() {
        c.member(i).put(&format!("after/{n}"), &format!("v{n}"));
    }
    let endpoints = survivors
        .iter()
        .map(|&i| c.member(i).endpoint())
        .collect::<Vec<_>>()
        .join(",");
    let out = common::etcdctl(&endpoints, &["put", "latest", "value"]);
    assert!(
        out.status.success(),
        "{}",
        common::describe(&["put", "latest", "value"], &out)
    );
    for &i in &survivors {
        let got = read_prefix(c.member(i), "after/", "l").expect("linearizable read on a survivor");
        assert_eq!(got.len(), 2, "{got:?}");
    }

    // The old leader comes back as a follower and catches up.
    c.member_mut(old).start();
    let m = c.member(old);
    wait_until(
        20,
        "the restarted member to serve the latest key locally",
        || m.ctl(&["get", "latest", "--consistency=s"]).stdout == b"latest\nvalue\n",
    );
    assert_eq!(
        m.ok(&["get", "before", "--consistency=s"]),
        "before\nkill\n"
    );
    c.wait_leader(&c.all(), 20);
    let got = read_prefix(m, "after/", "s").expect("serializable read");
    assert_eq!(got.len(), 2, "{got:?}");
    m.put("written", "through the restarted member");
    for i in c.all() {
        assert_eq!(
            c.member(i).get("written").as_deref(),
            Some("through the restarted member")
        );
    }
}

/// The stopped member had applied only the first few entries; the leader must have compacted
/// its log beyond this index (snapshot index minus its catch-up entries).
const COMPACTED_PAST_INDEX: u64 = 100;

/// The index of the last snapshot a member's log reports having saved.
fn last_snapshot_index(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("saved snapshot"))
        .filter_map(|l| l.rsplit("index=").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn restarted_member_catches_up_by_snapshot() {
    if !require_etcdctl() {
        return;
    }
    let mut c = Cluster::start(3, &["--snapshot-count", "50"]);
    let leader = c.wait_leader(&c.all(), 20);
    let down = (leader + 1) % 3;
    let up: Vec<usize> = c.all().into_iter().filter(|&i| i != down).collect();
    c.member(leader).put("k/000", "first");
    let m = c.member(down);
    wait_until(10, "the follower to apply the first key", || {
        m.ctl(&["get", "k/000", "--consistency=s"]).stdout == b"k/000\nfirst\n"
    });
    c.member_mut(down).kill();

    let rt = runtime();
    let leader_url = c.member(leader).client_url();
    let keys: Vec<(String, String)> = (1..=300)
        .map(|i| (format!("k/{i:03}"), format!("value-{i}")))
        .collect();
    put_all(&rt, &leader_url, keys, 16);
    // The leader keeps `catchup_entries` (DEFAULT_CATCHUP_ENTRIES, etcd's
    // snapshotCatchUpEntries) raft entries behind its snapshots for slow followers, so a member
    // that missed only 300 writes is caught up from the log. Overwriting keys well beyond that
    // many times makes the log it needs disappear, so it must be sent a snapshot.
    let filler: Vec<(String, String)> = (0..DEFAULT_CATCHUP_ENTRIES + 400)
        .map(|i| (format!("filler/{}", i % 8), i.to_string()))
        .collect();
    put_all(&rt, &leader_url, filler, 32);
    let expected = read_prefix(c.member(leader), "k/", "l").expect("read on the leader");
    assert_eq!(expected.len(), 301);
    // Snapshots are taken as each member applies, which can trail the acknowledged writes on
    // a loaded machine: restart the member only once its peers have compacted their logs past
    // the entries it would need (it stopped near the start of the log).
    // Every member that is up, not just the first leader: leadership can move under load,
    // and a leader that has not compacted sends the member its log instead.
    wait_until(
        60,
        "the live members to compact their logs past the member",
        || {
            up.iter().all(|&i| {
                last_snapshot_index(&c.member(i).log())
                    >= COMPACTED_PAST_INDEX + DEFAULT_CATCHUP_ENTRIES
            })
        },
    );

    c.member_mut(down).start();
    let m = c.member(down);
    wait_until(
        25,
        "the restarted member to serve all 301 keys locally",
        || read_prefix(m, "k/", "s").is_some_and(|got| got.len() == 301),
    );
    assert_eq!(read_prefix(m, "k/", "s").unwrap(), expected);
    assert!(
        m.log().contains("installed snapshot"),
        "the member should have caught up by snapshot transfer\n{}",
        m.log_tail()
    );
    for &i in &up {
        assert!(
            c.member(i).log().contains("saved snapshot"),
            "--snapshot-count 50 takes snapshots"
        );
    }
    // And it keeps following the log afterwards.
    c.member(leader).put("k/after", "snapshot");
    wait_until(10, "the member to apply a write after the snapshot", || {
        m.ctl(&["get", "k/after", "--consistency=s"]).stdout == b"k/after\nsnapshot\n"
    });
}

/// Keys acknowledged to the writers, `key → value`.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

/// One writer: sequential puts of `w{writer}/{seq}` through `endpoint` until `stop`,
/// recording every put that returned OK.
async fn writer(
    endpoint: String,
    writer: usize,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let mut client = Client::new(&endpoint).expect("client");
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("load/w{writer}/{seq:06}");
        let value = format!("v{writer}-{seq}");
        match tokio::time::timeout(
            Duration::from_secs(8),
            client.put(key.as_bytes(), value.as_bytes()),
        )
        .await
        {
            Ok(Ok(_rev)) => {
                acked.lock().unwrap().insert(key, value);
                ok += 1;
            }
            _ => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        seq += 1;
    }
    (ok, failed)
}

#[test]
fn acknowledged_writes_survive_kill_during_load() {
    if !require_etcdctl() {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(&c.all(), 20);
    let rt = runtime();
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Two writers per member, so some go through the leader and some through followers.
    let tasks: Vec<_> = (0..6)
        .map(|w| {
            let endpoint = c.member(w % 3).client_url();
            rt.spawn(writer(endpoint, w, acked.clone(), stop.clone()))
        })
        .collect();
    let count = || acked.lock().unwrap().len();

    wait_until(20, "100 acknowledged writes", || count() >= 100);
    c.member_mut(leader).kill();
    let killed_at = count();
    let survivors: Vec<usize> = c.all().into_iter().filter(|&i| i != leader).collect();
    c.wait_leader(&survivors, 20);
    wait_until(20, "100 more acknowledged writes after the kill", || {
        count() >= killed_at + 100
    });

    c.member_mut(leader).start();
    let restarted_at = count();
    wait_until(20, "writes through the restarted member", || {
        let a = acked.lock().unwrap();
        a.len() >= restarted_at + 50
            && a.range(format!("load/w{leader}/")..format!("load/w{leader}0"))
                .count()
                > 0
    });
    stop.store(true, Ordering::Relaxed);
    let (ok, failed): (Vec<u64>, Vec<u64>) = rt
        .block_on(async { futures::future::join_all(tasks).await })
        .into_iter()
        .map(|r| r.expect("writer task"))
        .unzip();
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "acknowledged {} writes ({:?} per writer), {} failed or timed out",
        acked.len(),
        ok,
        failed.iter().sum::<u64>()
    );

    for m in &c.members {
        // Linearizable first (the member must have caught up with the leader), then what the
        // member holds locally.
        for consistency in ["l", "s"] {
            let mut got = None;
            poll(20, || {
                got = read_prefix(m, "load/", consistency);
                got.as_ref()
                    .is_some_and(|got| acked.keys().all(|k| got.contains_key(k)))
            });
            let got =
                got.unwrap_or_else(|| panic!("{} does not answer a {consistency} read", m.name));
            let missing: Vec<&String> = acked.keys().filter(|k| !got.contains_key(*k)).collect();
            assert!(
                missing.is_empty(),
                "{} lost acknowledged writes: {missing:?}",
                m.name
            );
            for (k, v) in &acked {
                assert_eq!(
                    got.get(k),
                    Some(v),
                    "{} serves a wrong value for {k}",
                    m.name
                );
            }
        }
    }
}
