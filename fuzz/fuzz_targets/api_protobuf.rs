//! Fuzzes the API server's protobuf body decoder (`application/vnd.kubernetes.protobuf`,
//! what kubectl's generator commands send): `apiserver::protobuf::decode` on arbitrary bytes,
//! with and without the `k8s\0` magic in front.
//!
//! Checks: nothing panics; decoding is deterministic; whatever decodes is a JSON object with
//! `apiVersion` and `kind` set, and the typed shape check of its kind accepts or refuses it
//! without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube::apiserver::{protobuf, resources, validate};

fn check(bytes: &[u8]) {
    let first = protobuf::decode(bytes);
    assert_eq!(first, protobuf::decode(bytes), "decoding is deterministic");
    let Ok(obj) = first else { return };
    assert!(obj.is_object(), "decoded to an object");
    let (Some(api_version), Some(kind)) = (obj["apiVersion"].as_str(), obj["kind"].as_str()) else {
        panic!("apiVersion and kind are set: {obj}");
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if let Some(r) = resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
    {
        let _ = validate::check_shape(r, &obj);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = b"k8s\0".to_vec();
    framed.extend_from_slice(data);
    check(&framed);
});
