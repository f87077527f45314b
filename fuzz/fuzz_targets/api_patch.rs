//! Fuzzes the API server's PATCH bodies: `apiserver::patch::apply` with every `PatchKind`
//! (JSON merge patch, JSON patch, strategic merge patch) on an original object and a patch
//! decoded from the input.
//!
//! Input: the original object and the patch, split at the first 0 byte, each decoded as JSON
//! (`serde_json::from_slice::<Value>`, as the handler decodes a patch body). Without a 0 byte,
//! or when the first part is not JSON, the original is a fixed Deployment (the shape every
//! strategic merge key applies to) and the whole input (or the part after the 0 byte) is the
//! patch.
//!
//! Checks: nothing panics; a merge patch always succeeds (RFC 7386 has no failing case) and
//! is idempotent (`merge(merge(d, p), p) == merge(d, p)`: `null` deletes, objects merge
//! recursively, everything else replaces), and a merge patch that is not an object replaces
//! the whole document; a JSON patch with no operations changes nothing. (Strategic merge is
//! not idempotent in general: a list element without its merge key is appended every time,
//! so only "no panic" is checked for it.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube::apiserver::patch::{self, PatchKind};
use serde_json::{json, Value};

const KINDS: [PatchKind; 3] = [PatchKind::Merge, PatchKind::Json, PatchKind::Strategic];

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "a", "labels": {"app": "web"},
            "ownerReferences": [{"uid": "u1", "name": "o"}]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1",
                         "env": [{"name": "A", "value": "1"}],
                         "ports": [{"containerPort": 80}],
                         "volumeMounts": [{"name": "v", "mountPath": "/data"}]},
                        {"name": "side", "image": "busybox:1"}
                    ],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}]
                }
            }
        },
        "status": {"conditions": [{"type": "Available", "status": "True"}]}
    })
}

fuzz_target!(|data: &[u8]| {
    let (old, patch_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => match serde_json::from_slice::<Value>(&data[..i]) {
            Ok(old) => (old, &data[i + 1..]),
            Err(_) => (deployment(), &data[i + 1..]),
        },
        None => (deployment(), data),
    };
    let Ok(p) = serde_json::from_slice::<Value>(patch_bytes) else {
        return;
    };

    for kind in KINDS {
        let result = patch::apply(kind, &old, &p);
        match kind {
            PatchKind::Merge => {
                let once = result.expect("a JSON merge patch never fails");
                if !p.is_object() {
                    assert_eq!(once, p, "a non-object merge patch replaces the document");
                }
                let twice = patch::apply(PatchKind::Merge, &once, &p)
                    .expect("a JSON merge patch never fails");
                assert_eq!(twice, once, "a JSON merge patch is idempotent");
            }
            PatchKind::Json => {
                if p.as_array().is_some_and(Vec::is_empty) {
                    assert_eq!(result.as_ref(), Ok(&old), "an empty JSON patch is a no-op");
                }
                // Patching the result again must not panic either (the handler retries a
                // patch on the newest object after a conflict).
                if let Ok(once) = &result {
                    let _ = patch::apply(PatchKind::Json, once, &p);
                }
            }
            PatchKind::Strategic => {
                if let Ok(once) = &result {
                    let _ = patch::apply(PatchKind::Strategic, once, &p);
                }
            }
        }
    }
});
