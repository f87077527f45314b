//! End-to-end tests of one `rkube etcd` member driven by the real `etcdctl` 3.4 binary: every
//! etcdctl feature rkube supports, with assertions on etcdctl's output (values, revisions,
//! versions, TTLs, and etcd's exact error strings), plus backup/restore, WAL recovery after
//! kill -9, and clean exit on SIGTERM.
//!
//! Each test starts its own member on fresh loopback ports in its own temporary directory, so
//! the tests run in parallel. Without `etcdctl` they skip, unless `CI` is set.

#![cfg(not(madsim))]

mod common;

use std::time::{Duration, Instant};

use common::{
    b64_str, kvs, require_etcdctl, rkube_ok, wait_for, wait_until, Cluster, Member, Watcher,
};
use serde_json::Value;

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";

fn header_rev(v: &Value) -> i64 {
    v["header"]["revision"].as_i64().expect("header.revision")
}

/// The one kv of a `get -w json` answer.
fn only_kv(v: &Value) -> &Value {
    let kvs = v["kvs"].as_array().expect("kvs");
    assert_eq!(kvs.len(), 1, "expected one kv: {v}");
    &kvs[0]
}

/// The lease id (hex) from `lease grant`'s "lease ID granted with TTL(Ns)".
fn grant(m: &Member, ttl: u64) -> String {
    let out = m.ok(&["lease", "grant", &ttl.to_string()]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.len(), 5, "unexpected lease grant output: {out}");
    assert_eq!(words[0], "lease");
    assert_eq!(words[2..], ["granted", "with", &format!("TTL({ttl}s)")]);
    words[1].to_string()
}

/// Everything in the store, as `key\nvalue\n` lines.
fn dump(m: &Member) -> String {
    m.ok(&["get", "", "--from-key"])
}

#[test]
fn put_get_prefix_keys_only() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("foo", "bar");
    assert_eq!(m.ok(&["get", "foo"]), "foo\nbar\n");
    assert_eq!(m.ok(&["get", "foo", "--print-value-only"]), "bar\n");
    assert_eq!(m.ok(&["get", "missing"]), "", "absent key prints nothing");

    m.put("dir/a", "1");
    m.put("dir/b", "2");
    m.put("dir/c", "3");
    m.put("dis", "outside the prefix");
    assert_eq!(
        m.ok(&["get", "dir/", "--prefix"]),
        "dir/a\n1\ndir/b\n2\ndir/c\n3\n"
    );
    assert_eq!(
        m.ok(&["get", "dir/", "--prefix", "--keys-only"]),
        "dir/a\n\ndir/b\n\ndir/c\n\n"
    );
    assert_eq!(
        m.ok(&["get", "dir/", "--prefix", "--limit=2"]),
        "dir/a\n1\ndir/b\n2\n"
    );
    assert_eq!(
        m.ok(&["get", "dir/a", "dir/c"]),
        "dir/a\n1\ndir/b\n2\n",
        "range [a, c)"
    );
    assert_eq!(
        m.ok(&["get", "dir/", "--prefix", "--order=DESCEND", "--keys-only"]),
        "dir/c\n\ndir/b\n\ndir/a\n\n"
    );

    let limited = m.json(&["get", "dir/", "--prefix", "--limit=1"]);
    assert_eq!(kvs(&limited), [("dir/a".to_string(), "1".to_string())]);
    assert_eq!(limited["more"].as_bool(), Some(true), "{limited}");
    assert_eq!(limited["count"].as_i64(), Some(3), "{limited}");
}

#[test]
fn revisions_versions_and_historic_reads() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let r1 = header_rev(&m.json(&["put", "k", "v1"]));
    let r2 = header_rev(&m.json(&["put", "k", "v2"]));
    assert_eq!(r2, r1 + 1, "one revision per write");
    let r3 = header_rev(&m.json(&["put", "other", "x"]));
    assert_eq!(r3, r2 + 1);

    let v = m.json(&["get", "k"]);
    assert_eq!(header_rev(&v), r3, "header carries the store revision");
    let kv = only_kv(&v);
    assert_eq!(b64_str(&kv["key"]), "k");
    assert_eq!(b64_str(&kv["value"]), "v2");
    assert_eq!(kv["create_revision"].as_i64(), Some(r1));
    assert_eq!(kv["mod_revision"].as_i64(), Some(r2));
    assert_eq!(kv["version"].as_i64(), Some(2));
    for field in ["cluster_id", "member_id", "raft_term"] {
        assert!(
            v["header"][field].as_u64().unwrap_or(0) > 0,
            "header.{field} set: {v}"
        );
    }

    // Historic reads.
    assert_eq!(m.ok(&["get", "k", &format!("--rev={r1}")]), "k\nv1\n");
    assert_eq!(m.ok(&["get", "k", &format!("--rev={r2}")]), "k\nv2\n");
    assert_eq!(
        m.ok(&["get", "other", &format!("--rev={r2}")]),
        "",
        "not yet created at r2"
    );

    // Delete and re-create: a new generation starts at version 1.
    let rd = header_rev(&m.json(&["del", "k"]));
    assert_eq!(rd, r3 + 1);
    assert_eq!(m.ok(&["get", "k"]), "");
    assert_eq!(
        m.ok(&["get", "k", &format!("--rev={r2}")]),
        "k\nv2\n",
        "history survives the delete"
    );
    let r5 = header_rev(&m.json(&["put", "k", "v3"]));
    let kv = only_kv(&m.json(&["get", "k"])).clone();
    assert_eq!(kv["create_revision"].as_i64(), Some(r5));
    assert_eq!(kv["mod_revision"].as_i64(), Some(r5));
    assert_eq!(kv["version"].as_i64(), Some(1));

    // Sorted by modification revision, newest first.
    let by_mod = m.ok(&[
        "get",
        "",
        "--from-key",
        "--keys-only",
        "--sort-by=MODIFY",
        "--order=DESCEND",
    ]);
    assert_eq!(by_mod, "k\n\nother\n\n");
    let by_key = m.ok(&[
        "get",
        "",
        "--from-key",
        "--keys-only",
        "--sort-by=KEY",
        "--order=DESCEND",
    ]);
    assert_eq!(by_key, "other\n\nk\n\n");
}

#[test]
fn future_revision_is_an_error() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("k", "v");
    let rev = m.revision();
    let err = m.fails(&["get", "k", &format!("--rev={}", rev + 10)]);
    assert!(err.contains(&format!("Error: {FUTURE_REV}")), "{err}");
}

#[test]
fn delete_single_prefix_and_prev_kv() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    for (k, v) in [
        ("a", "1"),
        ("p/1", "x"),
        ("p/2", "y"),
        ("p/3", "z"),
        ("q", "2"),
    ] {
        m.put(k, v);
    }
    assert_eq!(m.ok(&["del", "a"]), "1\n");
    assert_eq!(
        m.ok(&["del", "a"]),
        "0\n",
        "deleting an absent key deletes nothing"
    );
    assert_eq!(m.ok(&["del", "p/1", "--prev-kv"]), "1\np/1\nx\n");
    assert_eq!(m.ok(&["del", "p/", "--prefix"]), "2\n");
    assert_eq!(dump(m), "q\n2\n");
    let before = m.revision();
    assert_eq!(m.ok(&["del", "nothing-here"]), "0\n");
    assert_eq!(
        m.revision(),
        before,
        "a delete of nothing does not bump the revision"
    );
}

#[test]
fn txn_from_stdin() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("t1", "a");

    // Compare succeeds: the success branch runs (put, then get).
    let out = m.ok_stdin(
        &["txn"],
        b"value(\"t1\") = \"a\"\n\nput t2 yes\nget t1\n\nput t2 no\n\n",
    );
    assert_eq!(out, "SUCCESS\n\nOK\n\nt1\na\n");
    assert_eq!(m.get("t2").as_deref(), Some("yes"));

    // Compare fails: the failure branch runs.
    let out = m.ok_stdin(
        &["txn"],
        b"value(\"t1\") = \"zzz\"\n\nput t2 yes\n\nput t2 no\n\n",
    );
    assert_eq!(out, "FAILURE\n\nOK\n");
    assert_eq!(m.get("t2").as_deref(), Some("no"));

    // Version, create and mod revision compares; one revision for the whole txn.
    let rev = m.revision();
    let script = format!(
        "version(\"t1\") = \"1\"\nmod(\"t2\") = \"{rev}\"\ncreate(\"missing\") = \"0\"\n\nput x 1\nput y 2\ndel t1\n\n\n"
    );
    let v: Value = serde_json::from_str(&m.ok_stdin(&["txn", "-w", "json"], script.as_bytes()))
        .expect("txn json");
    assert_eq!(v["succeeded"].as_bool(), Some(true), "{v}");
    assert_eq!(header_rev(&v), rev + 1, "a txn is one revision: {v}");
    assert_eq!(dump(m), "t2\nno\nx\n1\ny\n2\n");

    // A failing compare with an empty failure branch changes nothing.
    let v: Value = serde_json::from_str(&m.ok_stdin(
        &["txn", "-w", "json"],
        b"mod(\"x\") < \"1\"\n\nput x 9\n\n\n",
    ))
    .expect("txn json");
    assert!(v["succeeded"].as_bool() != Some(true), "{v}");
    assert_eq!(header_rev(&v), rev + 1, "{v}");
    assert_eq!(m.get("x").as_deref(), Some("1"));
}

#[test]
fn txn_interactive() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("i1", "v");
    let out = m.ok_stdin(
        &["txn", "-i"],
        b"version(\"i1\") > \"0\"\n\nput i2 yes\n\nput i2 no\n\n",
    );
    assert_eq!(
        out,
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\nOK\n"
    );
    assert_eq!(m.get("i2").as_deref(), Some("yes"));
}

#[test]
fn watch_replays_history_with_prev_kv() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let start = header_rev(&m.json(&["put", "w", "1"]));
    m.put("w", "2");
    m.ok(&["del", "w"]);
    m.put("unrelated", "x");
    let w = Watcher::start(
        &m.endpoint(),
        &["w", &format!("--rev={start}"), "--prev-kv"],
    );
    let expected = "PUT\nw\n1\nPUT\nw\n1\nw\n2\nDELETE\nw\n2\nw\n\n";
    let out = w.wait_stdout(15, "the replayed delete", |s| s.len() >= expected.len());
    assert_eq!(out, expected);

    // Then live events on the same watch.
    m.put("w", "3");
    // No prev kv for a put after a delete.
    let expected = format!("{expected}PUT\nw\n3\n");
    let out = w.wait_stdout(15, "the live put", |s| s.len() >= expected.len());
    assert_eq!(out, expected);
}

#[test]
fn watch_prefix_live_json() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("seed", "0");
    let from = m.revision() + 1;
    // Watching from the next revision: no event can be missed however late the watch starts.
    let w = Watcher::start(
        &m.endpoint(),
        &["p/", "--prefix", &format!("--rev={from}"), "-w", "json"],
    );
    m.put("p/x", "1");
    m.put("q", "not watched");
    m.put("p/y", "2");
    m.ok(&["del", "p/x"]);
    let out = w.wait_stdout(15, "three events", |s| s.lines().count() >= 3);
    let events: Vec<Value> = out
        .lines()
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).expect("watch json line");
            v["Events"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    let summary: Vec<(i64, String, String, i64)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_i64().unwrap_or(0),
                b64_str(&e["kv"]["key"]),
                b64_str(&e["kv"]["value"]),
                e["kv"]["mod_revision"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "p/x".into(), "1".into(), from),
            (0, "p/y".into(), "2".into(), from + 2),
            (1, "p/x".into(), String::new(), from + 3),
        ],
        "PUT=0 DELETE=1; q is outside the prefix: {out}"
    );
}

#[test]
fn lease_grant_keepalive_timetolive_list_revoke() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let id = grant(m, 60);
    let id_num = u64::from_str_radix(&id, 16).expect("hex lease id");
    m.ok(&["put", "--lease", &id, "lk1", "v1"]);
    m.ok(&["put", "--lease", &id, "lk2", "v2"]);

    let ttl = m.ok(&["lease", "timetolive", &id, "--keys"]);
    let prefix = format!("lease {id} granted with TTL(60s), remaining(");
    assert!(ttl.starts_with(&prefix), "{ttl}");
    let remaining: i64 = ttl[prefix.len()..]
        .split('s')
        .next()
        .unwrap()
        .parse()
        .expect("remaining");
    assert!(
        (50..=60).contains(&remaining),
        "remaining {remaining}s of 60s: {ttl}"
    );
    assert!(
        ttl.trim_end().ends_with("attached keys([lk1 lk2])"),
        "{ttl}"
    );

    let v = m.json(&["lease", "timetolive", &id, "--keys"]);
    assert_eq!(v["id"].as_u64(), Some(id_num), "{v}");
    assert_eq!(v["granted-ttl"].as_i64(), Some(60), "{v}");
    let ttl_left = v["ttl"].as_i64().expect("ttl");
    assert!((50..=60).contains(&ttl_left), "{v}");
    let mut keys: Vec<String> = v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(b64_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["lk1", "lk2"]);

    assert_eq!(
        m.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(60)\n")
    );
    let v = m.json(&["lease", "keep-alive", "--once", &id]);
    assert_eq!(
        (v["ID"].as_u64(), v["TTL"].as_i64()),
        (Some(id_num), Some(60)),
        "{v}"
    );

    let other = grant(m, 120);
    let list = m.ok(&["lease", "list"]);
    let mut lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.remove(0), "found 2 leases", "{list}");
    lines.sort();
    let mut want = [id.as_str(), other.as_str()];
    want.sort();
    assert_eq!(lines, want, "{list}");

    assert_eq!(
        m.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(dump(m), "", "revoking deletes the attached keys");
    assert_eq!(
        m.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(
        m.ok(&["lease", "list"]),
        format!("found 1 leases\n{other}\n")
    );
}

#[test]
fn lease_expiry_deletes_attached_keys() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let granted = Instant::now();
    let id = grant(m, 2);
    let put_rev = header_rev(&m.json(&["put", "--lease", &id, "ephemeral", "v"]));
    m.put("durable", "v");
    // Whatever the exact moment, a 2 s lease cannot have expired within its first second.
    if granted.elapsed() < Duration::from_millis(1000) {
        assert_eq!(m.get("ephemeral").as_deref(), Some("v"));
    }
    let w = Watcher::start(
        &m.endpoint(),
        &["ephemeral", &format!("--rev={}", put_rev + 1)],
    );
    wait_until(15, "the leased key to expire", || {
        m.get("ephemeral").is_none()
    });
    let took = granted.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "a 2 s lease expired after {took:?}"
    );
    assert_eq!(dump(m), "durable\nv\n");
    assert_eq!(
        m.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(m.ok(&["lease", "list"]), "found 0 leases\n");
    // Expiry is a delete that watchers see.
    let out = w.wait_stdout(15, "the expiry's delete event", |s| s.lines().count() >= 3);
    assert_eq!(out, "DELETE\nephemeral\n\n");
}

#[test]
fn unknown_lease_errors() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let err = m.fails(&["lease", "keep-alive", "--once", "1234"]);
    assert!(err.contains(&format!("Error: {LEASE_NOT_FOUND}")), "{err}");
    let err = m.fails(&["lease", "revoke", "1234"]);
    assert!(
        err.contains(&format!(
            "Error: failed to revoke lease ({LEASE_NOT_FOUND})"
        )),
        "{err}"
    );
    let err = m.fails(&["put", "--lease=1234", "k", "v"]);
    assert!(err.contains(&format!("Error: {LEASE_NOT_FOUND}")), "{err}");
    assert_eq!(m.ok(&["get", "k"]), "");
    assert_eq!(
        m.ok(&["lease", "timetolive", "1234"]),
        "lease 0000000000001234 already expired\n"
    );
}

#[test]
fn compaction_and_compacted_revisions() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let r1 = header_rev(&m.json(&["put", "c", "1"]));
    let r2 = header_rev(&m.json(&["put", "c", "2"]));
    let r3 = header_rev(&m.json(&["put", "c", "3"]));
    assert_eq!(
        m.ok(&["compaction", &r2.to_string()]),
        format!("compacted revision {r2}\n")
    );

    let err = m.fails(&["get", "c", &format!("--rev={r1}")]);
    assert!(err.contains(&format!("Error: {COMPACTED}")), "{err}");
    assert_eq!(
        m.ok(&["get", "c", &format!("--rev={r2}")]),
        "c\n2\n",
        "the compaction revision stays readable"
    );
    assert_eq!(m.ok(&["get", "c"]), "c\n3\n");

    let err = m.fails(&["compaction", &r2.to_string()]);
    assert!(
        err.contains(&format!("Error: {COMPACTED}")),
        "compacting twice: {err}"
    );
    let err = m.fails(&["compaction", &(r3 + 5).to_string()]);
    assert!(
        err.contains(&format!("Error: {FUTURE_REV}")),
        "compacting the future: {err}"
    );

    // A watch from before the compaction is canceled by the server.
    let w = Watcher::start(&m.endpoint(), &["c", &format!("--rev={r1}")]);
    let (status, out, err) = w.wait_exit(15);
    assert!(!status.success(), "watch should fail: {out}");
    assert!(
        err.contains(&format!("watch was canceled ({COMPACTED})")),
        "stderr: {err}\nstdout: {out}"
    );
    // A watch from after the compaction revision works.
    let w = Watcher::start(&m.endpoint(), &["c", &format!("--rev={r3}")]);
    let out = w.wait_stdout(15, "the event at r3", |s| s.lines().count() >= 3);
    assert_eq!(out, "PUT\nc\n3\n");
}

/// etcd 3.4 serves a watch that starts exactly at the compaction revision: its watcher groups
/// cancel only `start < compact_rev`, and compaction keeps each key's newest write at or
/// before the compaction revision (unless it is a delete). rkube does the same.
#[test]
fn watch_from_the_compaction_revision_like_etcd() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("c", "1");
    let r2 = header_rev(&m.json(&["put", "c", "2"]));
    m.put("c", "3");
    m.ok(&["compaction", &r2.to_string()]);
    let w = Watcher::start(&m.endpoint(), &["c", &format!("--rev={r2}")]);
    let out = w.wait_stdout(15, "two events", |s| s.lines().count() >= 6);
    assert_eq!(out, "PUT\nc\n2\nPUT\nc\n3\n");
}

#[test]
fn request_too_large() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    // etcdctl 3.4 refuses to send more than 2 MiB itself (gRPC's client send limit), so the
    // value is just under 2 MiB: above the server's 1.5 MiB request limit, under the client's.
    let file = c.dir().join("big-value");
    std::fs::write(&file, vec![b'x'; 2 * 1024 * 1024 - 4096]).expect("write big value");
    let input = std::fs::read(&file).expect("read big value");
    let out = m.ctl_stdin(&["put", "big"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a ~2 MiB put must fail");
    assert!(
        err.contains("Error: etcdserver: request is too large"),
        "{err}"
    );
    assert_eq!(m.ok(&["get", "big", "--keys-only"]), "");

    // Just under the limit is fine (value from stdin as well).
    let ok = vec![b'y'; 1024 * 1024];
    assert_eq!(m.ok_stdin(&["put", "big"], &ok), "OK\n");
    let v = m.json(&["get", "big"]);
    assert_eq!(b64_str(&only_kv(&v)["value"]).len(), ok.len());
}

#[test]
fn txn_with_too_many_operations() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    let script = |n: usize| {
        let mut s = String::from("\n");
        for i in 0..n {
            s.push_str(&format!("put k{i:03} v\n"));
        }
        s.push_str("\n\n");
        s
    };
    let out = m.ctl_stdin(&["txn"], script(129).as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Error: etcdserver: too many operations in txn request"),
        "{err}"
    );
    assert_eq!(
        m.ok(&["get", "k", "--prefix", "--keys-only"]),
        "",
        "a refused txn writes nothing"
    );

    let out = m.ok_stdin(&["txn"], script(128).as_bytes());
    assert!(out.starts_with("SUCCESS\n"), "{out}");
    let v = m.json(&["get", "k", "--prefix", "--limit=1"]);
    assert_eq!(v["count"].as_i64(), Some(128), "{v}");
}

#[test]
fn member_list() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    // Client URLs appear once the member has published its attributes through raft.
    let line = wait_for(15, "member list with client URLs", || {
        let out = m.ok(&["member", "list"]);
        (!out.contains(", , ")).then_some(out)
    });
    assert_eq!(
        line,
        format!(
            "{:x}, started, m1, {}, {}, false\n",
            m.id,
            m.peer_url(),
            m.client_url()
        )
    );
    let v = m.json(&["member", "list"]);
    let members = v["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{v}");
    assert_eq!(members[0]["ID"].as_u64(), Some(m.id));
    assert_eq!(members[0]["name"], "m1");
    assert_eq!(members[0]["peerURLs"], serde_json::json!([m.peer_url()]));
    assert_eq!(
        members[0]["clientURLs"],
        serde_json::json!([m.client_url()])
    );
    assert_eq!(v["header"]["member_id"].as_u64(), Some(m.id));
}

#[test]
fn endpoint_status_and_health() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    m.put("k", "v");
    let v = m.json(&["endpoint", "status"]);
    let st = &v[0]["Status"];
    assert_eq!(v[0]["Endpoint"], m.endpoint().as_str());
    assert_eq!(st["header"]["member_id"].as_u64(), Some(m.id));
    assert_eq!(
        st["leader"].as_u64(),
        Some(m.id),
        "a single member leads: {v}"
    );
    assert!(st["raftIndex"].as_u64().unwrap_or(0) >= 2, "{v}");
    assert!(st["raftTerm"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(st["dbSize"].as_i64().unwrap_or(0) > 0, "{v}");

    // Table form: endpoint, id, version, db size, is leader, is learner, term, index, applied.
    let out = m.ok(&["endpoint", "status"]);
    let cols: Vec<&str> = out.trim_end().trim_end_matches(',').split(", ").collect();
    assert_eq!(cols[0], m.endpoint());
    assert_eq!(cols[1], format!("{:x}", m.id));
    assert_eq!(cols[4], "true", "IS LEADER: {out}");
    assert_eq!(cols[5], "false", "IS LEARNER: {out}");

    // etcdctl 3.4 prints the health line on stderr.
    let out = m.ctl(&["endpoint", "health"]);
    assert!(
        out.status.success(),
        "{}",
        common::describe(&["endpoint", "health"], &out)
    );
    let out = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.starts_with(&format!(
            "{} is healthy: successfully committed proposal: took = ",
            m.endpoint()
        )),
        "{out}"
    );
    let v = m.json(&["endpoint", "health"]);
    assert_eq!(v[0]["health"].as_bool(), Some(true), "{v}");
}

#[test]
fn alarm_list_is_empty() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    assert_eq!(m.ok(&["alarm", "list"]), "");
    let v = m.json(&["alarm", "list"]);
    assert!(
        v.get("alarms")
            .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty())),
        "{v}"
    );
}

#[test]
fn defrag_keeps_data() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    for i in 0..20 {
        m.put(&format!("d{i:02}"), &i.to_string());
    }
    m.ok(&["del", "d0", "--prefix"]);
    let before = dump(m);
    let rev = m.revision();
    assert_eq!(
        m.ok(&["defrag"]),
        format!("Finished defragmenting etcd member[{}]\n", m.endpoint())
    );
    assert_eq!(dump(m), before);
    assert_eq!(m.revision(), rev);
    m.put("after", "defrag");
    assert_eq!(m.get("after").as_deref(), Some("defrag"));
}

#[test]
fn snapshot_save_and_restore() {
    if !require_etcdctl() {
        return;
    }
    let c = Cluster::single();
    let m = c.member(0);
    for i in 0..30 {
        m.put(&format!("s/{i:02}"), &format!("value-{i}"));
    }
    m.ok(&["del", "s/0", "--prefix"]);
    m.put("s/10", "updated");
    let before = dump(m);
    let rev = m.revision();
    let file = c.dir().join("backup.db");
    let file_s = file.to_str().unwrap();
    let out = m.ok(&["snapshot", "save", file_s]);
    assert_eq!(out, format!("Snapshot saved at {file_s}\n"));
    m.put("s/after-backup", "not in the backup");

    let restored = Cluster::start_with(1, &[], |r| {
        let out = rkube_ok(&[
            "snapshot",
            "restore",
            file_s,
            "--data-dir",
            r.data_dir.to_str().unwrap(),
            "--name",
            &r.name,
            "--initial-advertise-peer-urls",
            &r.peer_url(),
        ]);
        assert!(
            out.starts_with(&format!("Restored {file_s} into ")),
            "{out}"
        );
    });
    let r = restored.member(0);
    assert_eq!(dump(r), before, "the restored member serves the backup");
    assert_eq!(r.revision(), rev, "the restore keeps the revision");
    r.put("s/new", "written after restore");
    assert_eq!(r.get("s/new").as_deref(), Some("written after restore"));
    assert_eq!(r.revision(), rev + 1);
}

#[test]
fn restart_after_kill_keeps_every_key() {
    if !require_etcdctl() {
        return;
    }
    let mut c = Cluster::single();
    {
        let m = c.member(0);
        for i in 0..40 {
            m.put(&format!("r/{i:02}"), &format!("v{i}"));
        }
        m.ok(&["del", "r/1", "--prefix"]);
        let mut txn = String::from("\n");
        for i in 0..100 {
            txn.push_str(&format!("put t/{i:03} {i}\n"));
        }
        txn.push_str("\n\n");
        m.ok_stdin(&["txn"], txn.as_bytes());
        let id = grant(m, 600);
        m.ok(&["put", "--lease", &id, "leased", "x"]);
    }
    let before = dump(c.member(0));
    let rev = c.member(0).revision();
    assert_eq!(before.lines().count(), 2 * (30 + 100 + 1));

    let m = c.member_mut(0);
    m.restart(); // kill -9, then start on the same data dir
    m.wait_ready(20);
    assert_eq!(dump(m), before, "every acknowledged write survives kill -9");
    assert_eq!(m.revision(), rev);
    let v = m.json(&["get", "r/05"]);
    let kv = only_kv(&v);
    assert_eq!(kv["version"].as_i64(), Some(1));
    let leases = m.ok(&["lease", "list"]);
    assert!(
        leases.starts_with("found 1 leases"),
        "the lease survives too: {leases}"
    );
    m.put("after", "restart");
    assert_eq!(m.revision(), rev + 1);
}

#[test]
fn sigterm_exits_cleanly() {
    if !require_etcdctl() {
        return;
    }
    let mut c = Cluster::single();
    c.member(0).put("k", "before SIGTERM");
    let m = c.member_mut(0);
    let t = Instant::now();
    let status = m.terminate(10);
    let took = t.elapsed();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        m.log_tail()
    );
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} to stop the member"
    );
    assert!(m.log().contains("shutting down"), "{}", m.log_tail());

    m.start();
    m.wait_ready(20);
    assert_eq!(m.get("k").as_deref(), Some("before SIGTERM"));
}
