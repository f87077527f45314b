//! Fuzzes the API server's selector parsers (`?labelSelector=`, `?fieldSelector=`):
//! `apiserver::selector::LabelSelector::parse` and `FieldSelector::parse(s, plural)` on
//! arbitrary UTF-8, and matching what parses against fixed label maps and objects.
//!
//! Input: UTF-8 text (other inputs are skipped). The whole text is tried as a label selector,
//! as a field selector for pods, events, secrets, nodes, namespaces, replicasets and
//! configmaps, and split at the first `&` into both parameters of `Filter::from_query`.
//!
//! Checks: nothing panics; parsing is deterministic; the empty selector matches everything;
//! a parsed selector's requirements all hold for a label map built to satisfy it when it has
//! only `=`/`in`/exists requirements on distinct keys; a filter matches an object iff its
//! label and field selectors both do. (Neither selector type implements `Display`, so there
//! is no print-and-reparse check.)

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rkube::apiserver::selector::{FieldSelector, Filter, LabelReq, LabelSelector};
use serde_json::{json, Value};

const PLURALS: &[&str] = &[
    "pods",
    "events",
    "secrets",
    "nodes",
    "namespaces",
    "replicasets",
    "configmaps",
];

fn label_maps() -> Vec<BTreeMap<String, String>> {
    let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        m(&[]),
        m(&[("app", "web")]),
        m(&[("app", "web"), ("tier", "front"), ("env", "")]),
        m(&[("a", "b"), ("example.com/x", "1"), ("k-8_s.io", "(x)")]),
    ]
}

fn objects() -> Vec<Value> {
    vec![
        json!({}),
        json!({"metadata": {"name": "p", "namespace": "a", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "hostNetwork": true, "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "replicas": 3}}),
        json!({"metadata": {"name": "e", "namespace": "", "labels": {"tier": "front"}},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started", "type": "Normal",
            "source": {"component": "kubelet"}}),
        json!({"metadata": "not an object", "spec": [1, 2], "status": null, "type": 5}),
    ]
}

/// A label map every requirement of `sel` holds for, if one is easy to build.
fn satisfying(sel: &LabelSelector) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for req in &sel.0 {
        let (k, v) = match req {
            LabelReq::Equals(k, v) => (k, v.clone()),
            LabelReq::In(k, vs) => (k, vs.first()?.clone()),
            LabelReq::Exists(k) => (k, String::new()),
            _ => return None,
        };
        if out.insert(k.clone(), v).is_some() {
            return None;
        }
    }
    Some(out)
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]
        .get("labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let maps = label_maps();
    let objs = objects();

    let parsed = LabelSelector::parse(s);
    assert_eq!(
        parsed,
        LabelSelector::parse(s),
        "label parsing is deterministic"
    );
    if let Ok(sel) = &parsed {
        for m in &maps {
            let _ = sel.matches(m);
        }
        if sel.0.is_empty() {
            assert!(maps.iter().all(|m| sel.matches(m)), "empty matches all");
        }
        if let Some(m) = satisfying(sel) {
            assert!(sel.matches(&m), "{sel:?} does not match {m:?}");
        }
    }

    for plural in PLURALS {
        let parsed = FieldSelector::parse(s, plural);
        assert_eq!(parsed, FieldSelector::parse(s, plural), "deterministic");
        if let Ok(sel) = parsed {
            for o in &objs {
                let matched = sel.matches(o);
                if sel.0.is_empty() {
                    assert!(matched, "an empty field selector matches everything");
                }
            }
        }
    }

    let (labels, fields) = s.split_once('&').unwrap_or((s, ""));
    let query: BTreeMap<String, String> = [
        ("labelSelector".to_string(), labels.to_string()),
        ("fieldSelector".to_string(), fields.to_string()),
    ]
    .into_iter()
    .collect();
    if let Ok(filter) = Filter::from_query(&query, "pods") {
        for o in &objs {
            let both = filter.fields.matches(o) && filter.labels.matches(&labels_of(o));
            assert_eq!(filter.matches(o), both, "a filter is both selectors");
        }
    }
});
