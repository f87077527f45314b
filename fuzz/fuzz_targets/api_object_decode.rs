//! Fuzzes the API server's request-body decoding and its pure object rules, in the order the
//! handler applies them: a body decoded as JSON (`serde_json::from_slice::<Value>`) and as
//! YAML (`serde_yaml::from_slice`), then the create path (`objects::prepare_create`,
//! `defaults::apply`, for pods `defaults::admit_new_pod` and `priority::admit_new_pod` with no
//! class, `validate::check`, the stored bytes read back with `objects::from_stored`) and the
//! replace path (`objects::keep_subresource_fields`, `defaults::apply`, for pods
//! `priority::keep_on_update`, `objects::prepare_update`, `validate::update_problems`,
//! `validate::check_update`), and typed decoding into `api::core::Pod`, `api::apps::Deployment`
//! and `api::core::Service`.
//!
//! Input: the first byte picks the resource (`byte % RESOURCES.len()`) and whether the body
//! is also merged onto a valid object of that resource first (bit 4, so short inputs reach
//! the per-kind rules behind a valid name and spec); the rest is the body.
//!
//! Checks: nothing panics; an object the create path accepts serializes, and its stored
//! bytes read back as an object; a replace the rules accept also serializes; a typed object
//! decoded from JSON serializes back (`serde_json::to_value`), and that value decodes to an
//! equal typed object (the client library re-sends what it decoded).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube::api::apps::Deployment;
use rkube::api::core::{Pod, Service};
use rkube::apiserver::objects::{self, CreateInputs};
use rkube::apiserver::priority::{self, Source};
use rkube::apiserver::resources::{self, Resource};
use rkube::apiserver::{defaults, patch, validate};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// The resources bodies are decoded as: `(group, plural)`, each with per-kind rules.
const RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "services"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "namespaces"),
    ("", "nodes"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "daemonsets"),
    ("scheduling.k8s.io", "priorityclasses"),
];

/// Fixed server inputs, so a run is deterministic.
const INPUTS: CreateInputs = CreateInputs {
    now_unix_ms: 1_700_000_000_000,
    random: [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 42],
};

/// The revision the fuzzed object is "stored" at.
const STORED_REV: i64 = 7;

fn resource(i: u8) -> &'static Resource {
    let (group, plural) = RESOURCES[i as usize % RESOURCES.len()];
    resources::find(group, "v1", plural).expect("a served resource")
}

/// A valid object of `r`, as a client would send it.
fn template(r: &Resource) -> Value {
    let pod_spec = json!({"containers": [{"name": "c", "image": "nginx:1"}]});
    match r.plural {
        "pods" => json!({"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": pod_spec}),
        "services" => {
            json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}})
        }
        "configmaps" => json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        "secrets" => json!({"metadata": {"name": "s"}, "data": {"k": "dg=="}}),
        "namespaces" => json!({"metadata": {"name": "ns"}}),
        "nodes" => json!({"metadata": {"name": "n"}}),
        "priorityclasses" => json!({"metadata": {"name": "high"}, "value": 1000}),
        _ => json!({"metadata": {"name": "w"}, "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec},
        }}),
    }
}

fn namespace_of(r: &Resource) -> Option<&'static str> {
    r.namespaced.then_some("default")
}

/// The create path of the handler; the object as stored and read back, if accepted.
fn create(r: &Resource, mut obj: Value) -> Option<Value> {
    objects::prepare_create(&mut obj, r, namespace_of(r), &INPUTS).ok()?;
    defaults::apply(r, &mut obj);
    if priority::is_pod(r) {
        defaults::admit_new_pod(&mut obj);
        let _ = priority::admit_new_pod(&mut obj, "p", &Source::Default(None));
    }
    validate::check(r, &obj).ok()?;
    Some(store_and_read(&obj))
}

/// What the handler writes (`serde_json::to_vec`) must read back as an object. (Not compared
/// for equality: without serde_json's `float_roundtrip`, a float may move by one ulp.)
fn store_and_read(obj: &Value) -> Value {
    let bytes = serde_json::to_vec(obj).expect("an accepted object serializes");
    let back = objects::from_stored(&bytes, STORED_REV).expect("stored bytes read back");
    assert_eq!(
        back["metadata"]["name"], obj["metadata"]["name"],
        "the stored object keeps its name"
    );
    back
}

/// The replace (PUT) path of the handler: `new` sent for the stored `old`.
fn replace(r: &Resource, old: &Value, mut new: Value) {
    // The handler refuses a body that is not an object (or has bad metadata) first.
    if objects::meta_of(&new).is_err() {
        return;
    }
    objects::keep_subresource_fields(&mut new, old, r);
    defaults::apply(r, &mut new);
    if priority::is_pod(r) {
        priority::keep_on_update(&mut new, old);
    }
    if objects::prepare_update(&mut new, old, r).is_err() {
        return;
    }
    let _ = validate::update_problems(r, &new, old);
    if validate::check_update(r, &new, old).is_ok() {
        store_and_read(&new);
    }
}

/// Every rule on one decoded body.
fn rules(r: &Resource, body: &Value) {
    // Validation alone, as on any decoded value.
    let _ = validate::problems(r, body);
    let _ = validate::update_problems(r, body, body);
    let mut defaulted = body.clone();
    defaults::apply(r, &mut defaulted);

    let base = create(r, template(r)).expect("the template is a valid object");
    replace(r, &base, body.clone());
    if let Some(created) = create(r, body.clone()) {
        // An unchanged replace, a replace by the template, and the reverse.
        replace(r, &created, created.clone());
        replace(r, &created, template(r));
        replace(r, &base, created.clone());
        let _ = validate::update_problems(r, &base, &created);
        let _ = validate::update_problems(r, &created, &base);
    }
}

/// Typed decoding of a JSON body; what decodes must serialize and decode back unchanged.
fn typed<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(bytes: &[u8], v: &Value) {
    let from_bytes = serde_json::from_slice::<T>(bytes).ok();
    let from_value = serde_json::from_value::<T>(v.clone()).ok();
    for obj in [from_bytes, from_value].into_iter().flatten() {
        let back = serde_json::to_value(&obj).expect("a decoded typed object serializes");
        let again: T = serde_json::from_value(back.clone())
            .unwrap_or_else(|e| panic!("re-decoding {back} failed: {e}"));
        assert_eq!(again, obj, "typed JSON round trip changed the object");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let r = resource(head & 0x0f);
    let overlay = head & 0x10 != 0;

    let json = serde_json::from_slice::<Value>(body).ok();
    let yaml = serde_yaml::from_slice::<Value>(body).ok();
    if let Some(v) = &json {
        typed::<Pod>(body, v);
        typed::<Deployment>(body, v);
        typed::<Service>(body, v);
    }
    for v in [json, yaml].into_iter().flatten() {
        rules(r, &v);
        if overlay {
            rules(r, &patch::merge(&template(r), &v));
        }
    }
});
