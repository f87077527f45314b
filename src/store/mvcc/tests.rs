//! Unit tests: one or more per etcd rule the module documentation promises.

use super::*;

fn put(m: &mut Mvcc, k: &str, v: &str) -> i64 {
    m.put(&PutRequest::new(k, v)).expect("put");
    m.current_revision()
}

fn put_lease(m: &mut Mvcc, k: &str, v: &str, lease: i64) -> Result<Vec<Event>, MvccError> {
    let req = PutRequest {
        lease,
        ..PutRequest::new(k, v)
    };
    m.put(&req).map(|(_, events)| events)
}

fn del(m: &mut Mvcc, k: &str) -> Vec<Event> {
    m.delete_range(&DeleteRangeRequest::single(k))
        .expect("delete")
        .1
}

fn get(m: &Mvcc, k: &str) -> Option<KeyValue> {
    get_at(m, k, 0).expect("get")
}

fn get_at(m: &Mvcc, k: &str, rev: i64) -> Result<Option<KeyValue>, MvccError> {
    let req = RangeRequest {
        revision: rev,
        ..RangeRequest::single(k)
    };
    Ok(m.range(&req)?.kvs.into_iter().next())
}

fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn range_keys(m: &Mvcc, req: RangeRequest) -> Vec<String> {
    keys(&m.range(&req).expect("range"))
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp::Put(PutRequest::new(k, v))
}

fn op_del(k: &str, end: &str) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest::between(k, end))
}

fn op_get(k: &str) -> RequestOp {
    RequestOp::Range(RangeRequest::single(k))
}

fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

fn cmp(k: &str, target: CompareTarget, result: CompareResult) -> Compare {
    Compare::new(k, target, result)
}

fn kv(k: &str, v: &str, create: i64, modr: i64, version: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        create_revision: create,
        mod_revision: modr,
        version,
        lease: 0,
    }
}

#[test]
fn empty_store_is_at_revision_one() {
    let m = Mvcc::new();
    assert_eq!(m.current_revision(), 1);
    assert_eq!(m.compact_revision(), 0);
    let all = m.range(&RangeRequest::between("\0", "\0")).unwrap();
    assert_eq!((all.kvs.len(), all.count, all.more), (0, 0, false));
    assert!(get_at(&m, "a", 1).unwrap().is_none());
    assert_eq!(get_at(&m, "a", 2), Err(MvccError::FutureRevision));
}

#[test]
fn put_tracks_create_mod_and_version() {
    let mut m = Mvcc::new();
    assert_eq!(put(&mut m, "a", "1"), 2);
    assert_eq!(get(&m, "a"), Some(kv("a", "1", 2, 2, 1)));
    assert_eq!(put(&mut m, "b", "x"), 3);
    assert_eq!(put(&mut m, "a", "2"), 4);
    assert_eq!(get(&m, "a"), Some(kv("a", "2", 2, 4, 2)));
}

#[test]
fn delete_leaves_a_tombstone_and_recreation_resets_version() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    put(&mut m, "a", "2");
    let events = del(&mut m, "a");
    assert_eq!(m.current_revision(), 4);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Delete);
    // etcd: a delete event's kv carries only the key and the deleting revision.
    assert_eq!(
        events[0].kv,
        KeyValue {
            key: b"a".to_vec(),
            mod_revision: 4,
            ..KeyValue::default()
        }
    );
    assert_eq!(events[0].prev_kv, Some(kv("a", "2", 2, 3, 2)));
    assert_eq!(get(&m, "a"), None);
    assert_eq!(get_at(&m, "a", 3).unwrap(), Some(kv("a", "2", 2, 3, 2)));
    assert_eq!(get_at(&m, "a", 2).unwrap(), Some(kv("a", "1", 2, 2, 1)));
    put(&mut m, "a", "3");
    assert_eq!(get(&m, "a"), Some(kv("a", "3", 5, 5, 1)));
    assert_eq!(get_at(&m, "a", 4).unwrap(), None);
}

#[test]
fn deleting_nothing_does_not_bump_the_revision() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    let (resp, events) = m.delete_range(&DeleteRangeRequest::single("b")).unwrap();
    assert_eq!((resp.deleted, events.len()), (0, 0));
    let (resp, _) = m
        .delete_range(&DeleteRangeRequest::between("x", "\0"))
        .unwrap();
    assert_eq!(resp.deleted, 0);
    let (_, events) = m.txn(&txn(vec![], vec![op_del("q", "")], vec![])).unwrap();
    assert!(events.is_empty());
    assert_eq!(m.current_revision(), 2);
}

#[test]
fn a_write_txn_bumps_the_revision_exactly_once() {
    let mut m = Mvcc::new();
    put(&mut m, "c", "old");
    let req = txn(
        vec![],
        vec![op_put("a", "1"), op_put("b", "2"), op_del("c", "")],
        vec![],
    );
    let (resp, events) = m.txn(&req).unwrap();
    assert!(resp.succeeded);
    assert_eq!(m.current_revision(), 3);
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.kv.key.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Put, b"a".to_vec()),
            (EventKind::Put, b"b".to_vec()),
            (EventKind::Delete, b"c".to_vec()),
        ]
    );
    assert!(events.iter().all(|e| e.kv.mod_revision == 3));
    assert_eq!(m.events(3, b"\0", b"\0").unwrap(), events);
}

#[test]
fn read_only_txns_do_not_bump_the_revision() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    let (resp, events) = m.txn(&txn(vec![], vec![op_get("a")], vec![])).unwrap();
    assert!(events.is_empty());
    assert_eq!(m.current_revision(), 2);
    let ResponseOp::Range(r) = &resp.responses[0] else {
        panic!("range response expected");
    };
    assert_eq!(r.kvs, vec![kv("a", "1", 2, 2, 1)]);
    m.txn(&TxnRequest::default()).unwrap();
    assert_eq!(m.current_revision(), 2);
}

#[test]
fn reads_inside_a_txn_see_its_earlier_writes() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "old");
    let count_all = RequestOp::Range(RangeRequest {
        count_only: true,
        ..RangeRequest::between("\0", "\0")
    });
    let req = txn(
        vec![],
        vec![op_get("a"), op_put("a", "new"), op_get("a"), count_all],
        vec![],
    );
    let (resp, _) = m.txn(&req).unwrap();
    let ranges: Vec<&RangeResponse> = resp
        .responses
        .iter()
        .filter_map(|r| match r {
            ResponseOp::Range(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ranges[0].kvs, vec![kv("a", "old", 2, 2, 1)]);
    assert_eq!(ranges[1].kvs, vec![kv("a", "new", 2, 3, 2)]);
    assert_eq!(ranges[2].count, 1);
}

#[test]
fn a_txn_read_may_not_name_the_txns_own_revision() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    let future = RequestOp::Range(RangeRequest {
        revision: 3,
        ..RangeRequest::single("a")
    });
    let req = txn(vec![], vec![op_put("b", "1"), future], vec![]);
    assert_eq!(m.txn(&req), Err(MvccError::FutureRevision));
    assert_eq!(m.current_revision(), 2);
    assert_eq!(get(&m, "b"), None);
    let past = RequestOp::Range(RangeRequest {
        revision: 2,
        ..RangeRequest::single("a")
    });
    let (resp, _) = m
        .txn(&txn(vec![], vec![op_put("a", "2"), past], vec![]))
        .unwrap();
    let ResponseOp::Range(r) = &resp.responses[1] else {
        panic!("range response expected");
    };
    assert_eq!(r.kvs, vec![kv("a", "1", 2, 2, 1)]);
}

fn five_keys() -> Mvcc {
    let mut m = Mvcc::new();
    for (k, v) in [
        ("a", "5"),
        ("ab", "4"),
        ("abc", "3"),
        ("b", "2"),
        ("c", "1"),
    ] {
        put(&mut m, k, v);
    }
    m
}

#[test]
fn limit_sets_more_and_count_ignores_limit() {
    let m = five_keys();
    let limited = |limit| RangeRequest {
        limit,
        ..RangeRequest::between("a", "\0")
    };
    let r = m.range(&limited(2)).unwrap();
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a".into(), "ab".into()], true, 5)
    );
    let r = m.range(&limited(5)).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (5, false, 5));
    let r = m.range(&limited(0)).unwrap();
    assert_eq!((r.kvs.len(), r.more), (5, false));
}

#[test]
fn range_ends_select_point_prefix_half_open_and_from_key() {
    let m = five_keys();
    assert_eq!(range_keys(&m, RangeRequest::single("ab")), ["ab"]);
    assert_eq!(range_keys(&m, RangeRequest::prefix("ab")), ["ab", "abc"]);
    assert_eq!(
        range_keys(&m, RangeRequest::between("a", "b")),
        ["a", "ab", "abc"]
    );
    assert_eq!(
        range_keys(&m, RangeRequest::between("ab", "\0")),
        ["ab", "abc", "b", "c"]
    );
    assert_eq!(range_keys(&m, RangeRequest::between("\0", "\0")).len(), 5);
    assert!(range_keys(&m, RangeRequest::between("c", "a")).is_empty());
    assert!(range_keys(&m, RangeRequest::between("b", "b")).is_empty());
    assert_eq!(m.range(&RangeRequest::single("")), Err(MvccError::EmptyKey));
}

#[test]
fn keys_only_and_count_only() {
    let m = five_keys();
    let r = m
        .range(&RangeRequest {
            keys_only: true,
            ..RangeRequest::prefix("a")
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 3);
    assert!(r
        .kvs
        .iter()
        .all(|kv| kv.value.is_empty() && kv.version == 1));
    let r = m
        .range(&RangeRequest {
            count_only: true,
            limit: 1,
            min_mod_revision: 100,
            ..RangeRequest::prefix("a")
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (0, false, 3));
}

#[test]
fn sorting_follows_etcd() {
    let mut m = five_keys();
    put(&mut m, "b", "2'"); // b: version 2, newest mod
    let sorted = |order, target| {
        range_keys(
            &m,
            RangeRequest {
                sort_order: order,
                sort_target: target,
                ..RangeRequest::between("a", "\0")
            },
        )
    };
    use SortOrder::*;
    use SortTarget::*;
    assert_eq!(sorted(None, Key), ["a", "ab", "abc", "b", "c"]);
    assert_eq!(sorted(Descend, Key), ["c", "b", "abc", "ab", "a"]);
    assert_eq!(sorted(Ascend, Value), ["c", "b", "abc", "ab", "a"]);
    // No order on a non-key target means ascending (etcd); ties keep key order.
    assert_eq!(sorted(None, Value), ["c", "b", "abc", "ab", "a"]);
    assert_eq!(sorted(Descend, Version), ["b", "a", "ab", "abc", "c"]);
    assert_eq!(sorted(Ascend, Version), ["a", "ab", "abc", "c", "b"]);
    assert_eq!(sorted(Descend, Mod), ["b", "c", "abc", "ab", "a"]);
    assert_eq!(sorted(Ascend, Create), ["a", "ab", "abc", "b", "c"]);
    assert_eq!(sorted(Descend, Create), ["c", "b", "abc", "ab", "a"]);
    let top = m
        .range(&RangeRequest {
            sort_order: Descend,
            sort_target: Mod,
            limit: 1,
            ..RangeRequest::between("a", "\0")
        })
        .unwrap();
    assert_eq!(
        (keys(&top), top.more, top.count),
        (vec!["b".into()], true, 5)
    );
}

#[test]
fn revision_filters_prune_but_count_does_not() {
    let m = five_keys(); // a@2 ab@3 abc@4 b@5 c@6
    let filtered = |f: fn(&mut RangeRequest)| {
        let mut req = RangeRequest::between("a", "\0");
        f(&mut req);
        m.range(&req).unwrap()
    };
    let r = filtered(|r| r.min_mod_revision = 4);
    assert_eq!(
        (keys(&r), r.count),
        (vec!["abc".into(), "b".into(), "c".into()], 5)
    );
    assert_eq!(keys(&filtered(|r| r.max_mod_revision = 3)), ["a", "ab"]);
    assert_eq!(keys(&filtered(|r| r.min_create_revision = 6)), ["c"]);
    assert_eq!(keys(&filtered(|r| r.max_create_revision = 2)), ["a"]);
    let r = filtered(|r| {
        r.min_mod_revision = 3;
        r.limit = 2;
    });
    assert_eq!((keys(&r), r.more), (vec!["ab".into(), "abc".into()], true));
}

fn compare_holds(m: &mut Mvcc, c: Compare) -> bool {
    m.txn(&txn(vec![c], vec![], vec![])).unwrap().0.succeeded
}

#[test]
fn compares_on_an_existing_key() {
    let mut m = Mvcc::new();
    m.lease_grant(7, 60).unwrap();
    put(&mut m, "x", "1");
    put(&mut m, "k", "m");
    put_lease(&mut m, "k", "m", 7).unwrap(); // k: create 3, mod 4, version 2, lease 7
    use CompareResult::*;
    use CompareTarget as T;
    let cases: Vec<(T, [bool; 4])> = vec![
        // [Equal, Greater, Less, NotEqual] against operand 2 (or "m")
        (T::Version(2), [true, false, false, false]),
        (T::Version(1), [false, true, false, true]),
        (T::Version(3), [false, false, true, true]),
        (T::Create(3), [true, false, false, false]),
        (T::Create(2), [false, true, false, true]),
        (T::Mod(4), [true, false, false, false]),
        (T::Mod(5), [false, false, true, true]),
        (T::Lease(7), [true, false, false, false]),
        (T::Lease(0), [false, true, false, true]),
        (T::Value(b"m".to_vec()), [true, false, false, false]),
        (T::Value(b"a".to_vec()), [false, true, false, true]),
        (T::Value(b"z".to_vec()), [false, false, true, true]),
        (T::Value(b"mm".to_vec()), [false, false, true, true]),
    ];
    for (target, expected) in cases {
        for (result, want) in [Equal, Greater, Less, NotEqual].into_iter().zip(expected) {
            let c = cmp("k", target.clone(), result);
            assert_eq!(compare_holds(&mut m, c), want, "{target:?} {result:?}");
        }
    }
    assert_eq!(m.current_revision(), 4);
}

#[test]
fn compares_on_a_missing_key_see_zeros_and_value_always_fails() {
    let mut m = Mvcc::new();
    use CompareResult::*;
    use CompareTarget as T;
    for target in [T::Version(0), T::Create(0), T::Mod(0), T::Lease(0)] {
        assert!(compare_holds(&mut m, cmp("nope", target.clone(), Equal)));
        assert!(!compare_holds(&mut m, cmp("nope", target.clone(), Greater)));
        assert!(!compare_holds(&mut m, cmp("nope", target.clone(), Less)));
        assert!(!compare_holds(&mut m, cmp("nope", target, NotEqual)));
    }
    assert!(compare_holds(&mut m, cmp("nope", T::Version(1), Less)));
    for result in [Equal, Greater, Less, NotEqual] {
        assert!(!compare_holds(
            &mut m,
            cmp("nope", T::Value(vec![]), result)
        ));
        assert!(!compare_holds(
            &mut m,
            cmp("nope", T::Value(b"x".to_vec()), result)
        ));
    }
}

#[test]
fn a_range_compare_must_hold_for_every_key() {
    let mut m = five_keys();
    let mut c = cmp("a", CompareTarget::Version(1), CompareResult::Equal);
    c.range_end = b"b".to_vec();
    assert!(compare_holds(&mut m, c.clone()));
    put(&mut m, "ab", "again");
    assert!(!compare_holds(&mut m, c.clone()));
    c.target = CompareTarget::Create(100);
    c.result = CompareResult::Less;
    assert!(compare_holds(&mut m, c));
    let mut empty = cmp("x", CompareTarget::Version(0), CompareResult::Equal);
    empty.range_end = b"\0".to_vec();
    assert!(compare_holds(&mut m, empty));
}

#[test]
fn failure_branch_runs_when_a_compare_fails() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    let req = txn(
        vec![
            cmp("a", CompareTarget::Version(1), CompareResult::Equal),
            cmp(
                "a",
                CompareTarget::Value(b"2".to_vec()),
                CompareResult::Equal,
            ),
        ],
        vec![op_put("s", "1")],
        vec![op_put("f", "1"), op_get("a")],
    );
    let (resp, events) = m.txn(&req).unwrap();
    assert!(!resp.succeeded);
    assert_eq!(resp.responses.len(), 2);
    assert_eq!(events.len(), 1);
    assert!(get(&m, "f").is_some() && get(&m, "s").is_none());
}

#[test]
fn nested_txn_compares_see_the_state_before_the_outer_txn() {
    let mut m = Mvcc::new();
    let inner = TxnRequest {
        compare: vec![cmp("a", CompareTarget::Version(0), CompareResult::Equal)],
        success: vec![op_put("inner", "then"), op_get("a")],
        failure: vec![op_put("inner", "else")],
    };
    let outer = txn(
        vec![],
        vec![op_put("a", "1"), RequestOp::Txn(inner)],
        vec![],
    );
    let (resp, events) = m.txn(&outer).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(m.current_revision(), 2);
    assert_eq!(get(&m, "inner").unwrap().value, b"then");
    let ResponseOp::Txn(nested) = &resp.responses[1] else {
        panic!("txn response expected");
    };
    assert!(nested.succeeded);
    // ...while reads inside it still see the outer txn's earlier write.
    let ResponseOp::Range(r) = &nested.responses[1] else {
        panic!("range response expected");
    };
    assert_eq!(r.kvs, vec![kv("a", "1", 2, 2, 1)]);
}

#[test]
fn duplicate_keys_are_rejected_before_anything_applies() {
    let mut m = Mvcc::new();
    let nested = |success, failure| {
        RequestOp::Txn(TxnRequest {
            compare: vec![],
            success,
            failure,
        })
    };
    let rejected = [
        vec![op_put("a", "1"), op_put("a", "2")],
        vec![op_put("a", "1"), op_del("a", "")],
        vec![op_del("a", "b"), op_put("ab", "1")],
        vec![op_del("a", ""), nested(vec![op_put("a", "1")], vec![])],
        vec![op_put("a", "1"), nested(vec![], vec![op_put("a", "2")])],
        vec![
            nested(vec![op_put("a", "1")], vec![]),
            nested(vec![op_put("a", "2")], vec![]),
        ],
        vec![
            nested(vec![op_del("a", "z")], vec![]),
            nested(vec![], vec![op_put("q", "2")]),
        ],
    ];
    for ops in rejected {
        let req = txn(vec![], vec![op_put("other", "x")], ops);
        assert_eq!(m.txn(&req), Err(MvccError::DuplicateKey), "{req:?}");
    }
    assert_eq!(m.current_revision(), 1);
    assert!(get(&m, "other").is_none());
    // then/else of one nested txn are exclusive, so both may put the same key.
    let ok = txn(
        vec![],
        vec![nested(vec![op_put("a", "t")], vec![op_put("a", "e")])],
        vec![],
    );
    m.txn(&ok).unwrap();
    assert_eq!(get(&m, "a").unwrap().value, b"t");
}

#[test]
fn etcd_accepts_put_then_delete_across_nested_txns() {
    // etcd checks an earlier nested txn's puts only against deletes seen so far, so this is
    // accepted: the key is put and then deleted in the same revision.
    let mut m = Mvcc::new();
    put(&mut m, "a", "old");
    let nested = |op| {
        RequestOp::Txn(TxnRequest {
            success: vec![op],
            ..TxnRequest::default()
        })
    };
    let req = txn(
        vec![],
        vec![nested(op_put("a", "new")), nested(op_del("a", ""))],
        vec![],
    );
    let (_, events) = m.txn(&req).unwrap();
    assert_eq!(m.current_revision(), 3);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kv, kv("a", "new", 2, 3, 2));
    assert_eq!(events[1].kind, EventKind::Delete);
    // Watch prev_kv is the key at revision - 1, i.e. before the txn (as etcd's watch does).
    assert_eq!(events[1].prev_kv, Some(kv("a", "old", 2, 2, 1)));
    assert_eq!(get(&m, "a"), None);
    assert_eq!(m.events(3, b"a", b"").unwrap(), events);
    assert_eq!(m.events(3, b"\0", b"\0").unwrap(), events);
}

#[test]
fn etcd_accepts_from_key_delete_with_put() {
    // etcd's duplicate check treats range_end "\0" literally, so a from-key delete never
    // overlaps a put; the ops then run in order.
    let mut m = Mvcc::new();
    put(&mut m, "b", "old");
    let req = txn(vec![], vec![op_del("a", "\0"), op_put("b", "new")], vec![]);
    let (_, events) = m.txn(&req).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(get(&m, "b"), Some(kv("b", "new", 3, 3, 1)));
    assert_eq!(events[1].prev_kv, None, "a create carries no prev_kv");
}

#[test]
fn a_failing_txn_leaves_the_store_unchanged() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1");
    let before = m.clone();
    let bad_lease = RequestOp::Put(PutRequest {
        lease: 42,
        ..PutRequest::new("b", "1")
    });
    let ignore_missing = RequestOp::Put(PutRequest {
        ignore_value: true,
        ..PutRequest::new("zz", "")
    });
    let cases = [
        (
            vec![op_put("x", "1"), op_del("a", ""), bad_lease],
            MvccError::LeaseNotFound,
        ),
        (
            vec![op_put("x", "1"), ignore_missing],
            MvccError::KeyNotFound,
        ),
        (vec![op_put("x", "1"), op_put("", "1")], MvccError::EmptyKey),
    ];
    for (ops, err) in cases {
        assert_eq!(m.txn(&txn(vec![], ops, vec![])), Err(err));
        assert_eq!(m, before);
    }
    assert_eq!(m.hash(), before.hash());
}

#[test]
fn checks_apply_only_to_the_branch_taken() {
    let mut m = Mvcc::new();
    let bad = RequestOp::Put(PutRequest {
        lease: 42,
        ..PutRequest::new("b", "1")
    });
    let req = txn(vec![], vec![op_put("a", "1")], vec![bad]);
    assert!(m.txn(&req).unwrap().0.succeeded);
}

#[test]
fn ignore_value_and_ignore_lease_keep_the_old_ones() {
    let mut m = Mvcc::new();
    m.lease_grant(5, 10).unwrap();
    put_lease(&mut m, "k", "v1", 5).unwrap();
    let keep_value = PutRequest {
        ignore_value: true,
        lease: 5,
        ..PutRequest::new("k", "")
    };
    m.put(&keep_value).unwrap();
    assert_eq!(get(&m, "k").unwrap().value, b"v1");
    assert_eq!(get(&m, "k").unwrap().version, 2);
    let keep_lease = PutRequest {
        ignore_lease: true,
        ..PutRequest::new("k", "v2")
    };
    m.put(&keep_lease).unwrap();
    assert_eq!(get(&m, "k").unwrap().lease, 5);
    assert_eq!(m.lease_keys(5).unwrap(), vec![b"k".to_vec()]);
    let missing = PutRequest {
        ignore_value: true,
        ..PutRequest::new("nope", "")
    };
    assert_eq!(m.put(&missing), Err(MvccError::KeyNotFound));
    let value_given = PutRequest {
        ignore_value: true,
        ..PutRequest::new("k", "v")
    };
    assert_eq!(m.put(&value_given), Err(MvccError::ValueProvided));
    let lease_given = PutRequest {
        ignore_lease: true,
        lease: 5,
        ..PutRequest::new("k", "v")
    };
    assert_eq!(m.put(&lease_given), Err(MvccError::LeaseProvided));
    assert_eq!(m.current_revision(), 4);
}

#[test]
fn prev_kv_on_put_and_delete_responses() {
    let mut m = Mvcc::new();
    let with_prev = PutRequest {
        prev_kv: true,
        ..PutRequest::new("a", "1")
    };
    assert_eq!(m.put(&with_prev).unwrap().0.prev_kv, None);
    let again = PutRequest {
        value: b"2".to_vec(),
        ..with_prev
    };
    assert_eq!(
        m.put(&again).unwrap().0.prev_kv,
        Some(kv("a", "1", 2, 2, 1))
    );
    put(&mut m, "b", "x");
    let del = DeleteRangeRequest {
        prev_kv: true,
        ..DeleteRangeRequest::between("a", "\0")
    };
    let (resp, events) = m.delete_range(&del).unwrap();
    assert_eq!(resp.deleted, 2);
    assert_eq!(
        resp.prev_kvs,
        vec![kv("a", "2", 2, 3, 2), kv("b", "x", 4, 4, 1)]
    );
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kv.mod_revision == 5));
}

#[test]
fn compaction_boundaries_and_errors() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1"); // 2
    put(&mut m, "a", "2"); // 3
    put(&mut m, "b", "1"); // 4
    del(&mut m, "b"); // 5
    put(&mut m, "a", "3"); // 6
    assert_eq!(m.compact(7), Err(MvccError::FutureRevision));
    assert_eq!(m.compact(0), Err(MvccError::Compacted));
    let reads: Vec<_> = (4..=6)
        .map(|r| {
            m.range(&RangeRequest {
                revision: r,
                ..RangeRequest::between("\0", "\0")
            })
        })
        .collect();
    m.compact(4).unwrap();
    assert_eq!(m.compact_revision(), 4);
    assert_eq!(m.current_revision(), 6);
    assert_eq!(m.compact(4), Err(MvccError::Compacted));
    assert_eq!(m.compact(3), Err(MvccError::Compacted));
    assert_eq!(get_at(&m, "a", 3), Err(MvccError::Compacted));
    for (r, before) in (4..=6).zip(reads) {
        let req = RangeRequest {
            revision: r,
            ..RangeRequest::between("\0", "\0")
        };
        assert_eq!(m.range(&req), before, "read at {r}");
    }
    // a keeps one write at or before 4 (rev 3) plus rev 6; b's tombstone at 5 stays.
    assert_eq!(m.index.get(&b"a"[..]).unwrap().entries().len(), 2);
    m.compact(6).unwrap();
    assert!(!m.index.contains_key(&b"b"[..]), "deleted key freed");
    assert_eq!(m.index.get(&b"a"[..]).unwrap().entries().len(), 1);
    // Only the compaction revision's put stays in the change log (a watch from 6 sees it).
    assert_eq!(m.log.keys().copied().collect::<Vec<_>>(), vec![6]);
    assert_eq!(m.events(6, b"a", b"").unwrap().len(), 1);
    assert_eq!(m.events(5, b"a", b""), Err(MvccError::Compacted));
    assert_eq!(get(&m, "a"), Some(kv("a", "3", 2, 6, 3)));
    assert_eq!(get_at(&m, "a", 6).unwrap(), Some(kv("a", "3", 2, 6, 3)));
    put(&mut m, "a", "4");
    assert_eq!(get(&m, "a"), Some(kv("a", "4", 2, 7, 4)));
}

#[test]
fn compaction_at_the_initial_revision() {
    let mut m = Mvcc::new();
    m.compact(1).unwrap();
    assert_eq!(m.compact(1), Err(MvccError::Compacted));
    assert_eq!(get_at(&m, "a", 1).unwrap(), None);
    put(&mut m, "a", "1");
    assert_eq!(m.events(2, b"a", b"").unwrap().len(), 1);
    assert_eq!(
        m.events(1, b"a", b"").unwrap().len(),
        1,
        "from the compaction revision"
    );
    m.compact(2).unwrap();
    assert_eq!(m.events(1, b"a", b""), Err(MvccError::Compacted));
}

#[test]
fn a_watch_from_the_compaction_revision_sees_its_puts_but_not_its_deletes() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1"); // 2
    put(&mut m, "b", "1"); // 3
                           // One txn at revision 4: put a, delete b, put c (subs 0, 1, 2).
    let txn = TxnRequest {
        success: vec![
            RequestOp::Put(PutRequest::new("a", "2")),
            RequestOp::DeleteRange(DeleteRangeRequest::single(b"b".to_vec())),
            RequestOp::Put(PutRequest::new("c", "1")),
        ],
        ..Default::default()
    };
    m.txn(&txn).unwrap();
    put(&mut m, "a", "3"); // 5
    m.compact(4).unwrap();
    let got: Vec<_> = m
        .events(4, b"\0", b"\0")
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.kind,
                e.kv.key.clone(),
                e.kv.mod_revision,
                e.prev_kv.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Put, b"a".to_vec(), 4, false),
            (EventKind::Put, b"c".to_vec(), 4, false),
            (EventKind::Put, b"a".to_vec(), 5, true),
        ]
    );
    assert_eq!(m.events(4, b"b", b"").unwrap(), vec![]);
    // The snapshot round trip rebuilds the same log, placeholder for the dropped delete included.
    let back = Mvcc::from_snapshot_bytes(&m.to_snapshot_bytes()).unwrap();
    assert_eq!(back.log, m.log);
    assert_eq!(
        back.events(4, b"\0", b"\0").unwrap(),
        m.events(4, b"\0", b"\0").unwrap()
    );
}

#[test]
fn events_replay_history_with_prev_kv() {
    let mut m = Mvcc::new();
    put(&mut m, "a", "1"); // 2
    put(&mut m, "b", "1"); // 3
    put(&mut m, "a", "2"); // 4
    del(&mut m, "a"); // 5
    let all = m.events(0, b"\0", b"\0").unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|e| {
            (
                e.kind,
                e.kv.mod_revision,
                e.prev_kv.as_ref().map(|p| p.mod_revision),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::Put, 2, None),
            (EventKind::Put, 3, None),
            (EventKind::Put, 4, Some(2)),
            (EventKind::Delete, 5, Some(4)),
        ]
    );
    assert_eq!(m.events(4, b"a", b"").unwrap(), all[2..].to_vec());
    assert_eq!(m.events(3, b"a", b"b").unwrap(), all[2..].to_vec());
    assert_eq!(m.events(3, b"b", b"\0").unwrap(), all[1..2].to_vec());
    assert!(m.events(6, b"\0", b"\0").unwrap().is_empty());
    assert_eq!(
        m.events_between(2, 3, b"\0", b"\0").unwrap(),
        all[..2].to_vec()
    );
    m.compact(3).unwrap();
    assert_eq!(m.events(2, b"a", b""), Err(MvccError::Compacted));
    assert_eq!(m.events(3, b"a", b"").unwrap(), all[2..].to_vec());
    assert_eq!(m.events(4, b"\0", b"\0").unwrap(), all[2..].to_vec());
}

#[test]
fn lease_grant_rules() {
    let mut m = Mvcc::new();
    assert_eq!(m.lease_grant(0, 10), Err(MvccError::LeaseNotFound));
    assert_eq!(
        m.lease_grant(1, MAX_LEASE_TTL_SECS + 1),
        Err(MvccError::LeaseTtlTooLarge)
    );
    m.lease_grant(3, 30).unwrap();
    m.lease_grant(-1, 5).unwrap();
    assert_eq!(m.lease_grant(3, 1), Err(MvccError::LeaseExists));
    assert_eq!(m.leases(), vec![(-1, 5), (3, 30)]);
    assert_eq!(m.lease_ttl(3), Ok(30));
    assert_eq!(m.lease_ttl(4), Err(MvccError::LeaseNotFound));
    assert_eq!(m.lease_keys(4), Err(MvccError::LeaseNotFound));
    assert_eq!(m.current_revision(), 1, "leases do not bump the revision");
}

#[test]
fn keys_follow_their_lease() {
    let mut m = Mvcc::new();
    assert_eq!(
        put_lease(&mut m, "a", "1", 9),
        Err(MvccError::LeaseNotFound)
    );
    m.lease_grant(1, 10).unwrap();
    m.lease_grant(2, 10).unwrap();
    put_lease(&mut m, "a", "1", 1).unwrap();
    put_lease(&mut m, "b", "1", 1).unwrap();
    put_lease(&mut m, "c", "1", 1).unwrap();
    assert_eq!(m.lease_keys(1).unwrap().len(), 3);
    put_lease(&mut m, "a", "2", 2).unwrap();
    put(&mut m, "b", "2"); // detaches: a put without a lease clears it
    del(&mut m, "c");
    assert!(m.lease_keys(1).unwrap().is_empty());
    assert_eq!(m.lease_keys(2).unwrap(), vec![b"a".to_vec()]);
    let rev = m.current_revision();
    assert!(m.lease_revoke(1).unwrap().is_empty());
    assert_eq!(
        m.current_revision(),
        rev,
        "revoking an empty lease writes nothing"
    );
    assert_eq!(m.lease_revoke(1), Err(MvccError::LeaseNotFound));
}

#[test]
fn revoke_deletes_every_attached_key_in_one_revision() {
    let mut m = Mvcc::new();
    m.lease_grant(7, 10).unwrap();
    for k in ["z", "m", "a"] {
        put_lease(&mut m, k, "v", 7).unwrap();
    }
    put(&mut m, "free", "v");
    let events = m.lease_revoke(7).unwrap();
    assert_eq!(m.current_revision(), 6);
    let deleted: Vec<_> = events.iter().map(|e| e.kv.key.clone()).collect();
    assert_eq!(deleted, vec![b"a".to_vec(), b"m".to_vec(), b"z".to_vec()]);
    assert!(events
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == 6));
    assert_eq!(events[0].prev_kv.as_ref().unwrap().lease, 7);
    assert_eq!(range_keys(&m, RangeRequest::between("\0", "\0")), ["free"]);
    assert!(m.leases().is_empty());
    assert_eq!(m.events(6, b"\0", b"\0").unwrap(), events);
}

fn busy_store() -> Mvcc {
    let mut m = Mvcc::new();
    m.lease_grant(4, 100).unwrap();
    m.lease_grant(9, 5).unwrap();
    put(&mut m, "a", "1");
    put_lease(&mut m, "b", "1", 4).unwrap();
    put(&mut m, "a", "2");
    del(&mut m, "a");
    put_lease(&mut m, "c", "x", 9).unwrap();
    m.txn(&txn(
        vec![],
        vec![op_put("d", "1"), op_put("e", "1")],
        vec![],
    ))
    .unwrap();
    m.compact(3).unwrap();
    put(&mut m, "a", "again");
    m
}

#[test]
fn snapshot_round_trip_preserves_everything() {
    let m = busy_store();
    let bytes = m.to_snapshot_bytes();
    let back = Mvcc::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.hash(), m.hash());
    assert_eq!(back.to_snapshot_bytes(), bytes);
    assert_eq!(back.lease_keys(4).unwrap(), vec![b"b".to_vec()]);
    for rev in m.compact_revision()..=m.current_revision() {
        let req = RangeRequest {
            revision: rev,
            ..RangeRequest::between("\0", "\0")
        };
        assert_eq!(back.range(&req), m.range(&req));
    }
    let empty = Mvcc::from_snapshot_bytes(&Mvcc::new().to_snapshot_bytes()).unwrap();
    assert_eq!(empty, Mvcc::new());
}

#[test]
fn hash_is_the_snapshot_crc_and_tracks_state() {
    let m = busy_store();
    let bytes = m.to_snapshot_bytes();
    assert_eq!(bytes[20..24], m.hash().to_le_bytes());
    let mut other = m.clone();
    assert_eq!(other.hash(), m.hash());
    put(&mut other, "a", "changed");
    assert_ne!(other.hash(), m.hash());
}

#[test]
fn bad_snapshots_are_rejected() {
    let good = busy_store().to_snapshot_bytes();
    let is_bad = |b: &[u8]| matches!(Mvcc::from_snapshot_bytes(b), Err(MvccError::BadSnapshot(_)));
    assert!(is_bad(&[]));
    assert!(is_bad(&good[..good.len() - 1]));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(is_bad(&trailing));
    let mut magic = good.clone();
    magic[0] ^= 1;
    assert!(is_bad(&magic));
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    assert!(is_bad(&flipped));
    let mut version = good.clone();
    version[8] = 2;
    assert!(is_bad(&version));
}

/// Wraps `body` in a valid header, so tests reach the body decoder.
fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = b"RKMVCCSN".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn huge_counts_are_rejected_without_allocating() {
    let mut body = Vec::new();
    body.extend_from_slice(&5i64.to_le_bytes());
    body.extend_from_slice(&0i64.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes()); // key count
    let err = Mvcc::from_snapshot_bytes(&with_header(&body)).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
}

#[test]
fn inconsistent_snapshot_bodies_are_rejected() {
    // Revision 2 claimed but no write recorded at it.
    let mut body = Vec::new();
    body.extend_from_slice(&2i64.to_le_bytes());
    body.extend_from_slice(&0i64.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    assert!(Mvcc::from_snapshot_bytes(&with_header(&body)).is_err());
    // A live key on a lease the table lacks.
    let mut m = Mvcc::new();
    m.lease_grant(1, 10).unwrap();
    put_lease(&mut m, "a", "1", 1).unwrap();
    let snap = m.to_snapshot_bytes();
    let body = &snap[24..];
    let without_lease = &body[..body.len() - 24];
    let mut patched = without_lease.to_vec();
    patched.extend_from_slice(&0u64.to_le_bytes());
    let err = Mvcc::from_snapshot_bytes(&with_header(&patched)).unwrap_err();
    assert!(err.to_string().contains("unknown lease"), "{err}");
}

#[test]
fn an_ignore_value_put_after_a_from_key_delete_of_its_key_is_rejected() {
    // etcd accepts this txn (its duplicate check reads "\0" literally), checks the put
    // against the state before the txn, then panics applying it; we reject it up front.
    let mut m = Mvcc::new();
    put(&mut m, "b", "old");
    let before = m.clone();
    let keep = |k: &str| {
        RequestOp::Put(PutRequest {
            ignore_value: true,
            ..PutRequest::new(k, "")
        })
    };
    let req = txn(vec![], vec![op_del("a", "\0"), keep("b")], vec![]);
    assert_eq!(m.txn(&req), Err(MvccError::KeyNotFound));
    assert_eq!(m, before);
    // Nothing can re-create the key in between: a second put of it is a duplicate.
    let req = txn(
        vec![],
        vec![op_del("a", "\0"), op_put("b", "x"), keep("b")],
        vec![],
    );
    assert_eq!(m.txn(&req), Err(MvccError::DuplicateKey));
    // A from-key delete that does not reach the key is fine.
    let req = txn(vec![], vec![op_del("c", "\0"), keep("b")], vec![]);
    let (_, events) = m.txn(&req).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(get(&m, "b"), Some(kv("b", "old", 2, 3, 2)));
}
