//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes'
//! strategic merge patch (merge semantics, plus lists of objects merged by a key such as
//! `name` for containers, and the `$patch` directives). Pure functions over JSON values.

use serde_json::{Map, Value};

/// The patch formats, by request Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
}

impl PatchKind {
    /// The patch kind a Content-Type names, if supported.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            _ => None,
        }
    }
}

/// Most operations in one JSON patch.
pub const MAX_JSON_PATCH_OPS: usize = 10_000;
/// Most JSON values (objects, arrays, scalars) a JSON patch may add in total: `copy` can
/// double a document per operation, so without a budget a small patch exhausts memory.
pub const MAX_JSON_PATCH_ADDED_VALUES: usize = 500_000;
/// Deepest nesting a patched document may reach (serde_json reads at most 128 levels, and
/// deeper values would overflow the stack when written or dropped).
pub const MAX_DOCUMENT_DEPTH: usize = 100;

/// The number of values in `v` if it has at most `max_values` of them and nests at most
/// `max_depth` deep; counted without recursion, stopping as soon as a limit is passed.
fn size_within(v: &Value, max_depth: usize, max_values: usize) -> Option<usize> {
    let mut stack = vec![(v, 0usize)];
    let mut count = 0usize;
    while let Some((v, depth)) = stack.pop() {
        count += 1;
        if count > max_values || depth > max_depth {
            return None;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, depth + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    Some(count)
}

/// Applies `patch` of `kind` to `doc`.
pub fn apply(kind: PatchKind, doc: &Value, patch: &Value) -> Result<Value, String> {
    match kind {
        PatchKind::Merge => Ok(merge(doc, patch)),
        PatchKind::Strategic => strategic(doc, patch, ""),
        PatchKind::Json => json_patch(doc, patch),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge(doc: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match doc {
        Value::Object(d) => d.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// The key that identifies elements of a list field in a strategic merge, as upstream's
/// `patchMergeKey` tags declare it (by the field's name and its parent's path suffix).
/// Server-side apply ([`super::apply`]) uses the same table for its associative lists.
pub fn merge_key(path: &str, field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" if path.ends_with("containers[]") || path.ends_with("Containers[]") => {
            "containerPort"
        }
        "ports" => "port",
        "tolerations" | "topologySpreadConstraints" => return None,
        "conditions" => "type",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

/// A strategic merge: like [`merge`], but lists with a merge key merge element by element,
/// `$patch: delete` removes an element or map, `$patch: replace` replaces, and directive
/// keys (`$setElementOrder/...`, `$retainKeys`) are honoured or dropped.
pub fn strategic(doc: &Value, patch: &Value, path: &str) -> Result<Value, String> {
    let Value::Object(p) = patch else {
        return Ok(patch.clone());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut rest = p.clone();
            rest.remove("$patch");
            return Ok(Value::Object(rest));
        }
        Some("delete") => return Ok(Value::Null),
        Some(other) => return Err(format!("unknown patch directive {other:?}")),
        None => {}
    }
    let mut out = match doc {
        Value::Object(d) => d.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        let child_path = format!("{path}.{k}");
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Array(old)), Value::Array(new)) => match merge_key(path, k) {
                Some(key) => Value::Array(merge_list(old, new, key, &format!("{child_path}[]"))?),
                None => Value::Array(new.iter().filter(|e| !is_directive(e)).cloned().collect()),
            },
            (old, new) => {
                let merged = strategic(old.unwrap_or(&Value::Null), new, &child_path)?;
                if merged.is_null() {
                    out.remove(k);
                    continue;
                }
                merged
            }
        };
        out.insert(k.clone(), merged);
    }
    Ok(Value::Object(out))
}

fn is_directive(v: &Value) -> bool {
    v.get("$patch").is_some()
}

fn merge_list(old: &[Value], new: &[Value], key: &str, path: &str) -> Result<Vec<Value>, String> {
    if new
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(new.iter().filter(|e| !is_directive(e)).cloned().collect());
    }
    let mut out: Vec<Value> = old.to_vec();
    for item in new {
        let id = item.get(key).cloned();
        let at = id
            .as_ref()
            .and_then(|id| out.iter().position(|o| o.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (at, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => out[i] = strategic(&out[i], item, path)?,
            (None, false) => out.push(strategic(&Value::Null, item, path)?),
        }
    }
    Ok(out)
}

/// RFC 6901 pointer → path segments.
fn pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {p:?}"))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path /{} does not exist", path.join("/")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("bad array index {last:?}"))?
            };
            if i > a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err("cannot add into a scalar".into()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, parent) = path
        .split_last()
        .ok_or("cannot remove the whole document")?;
    let missing = || format!("path /{} does not exist", path.join("/"));
    match get_mut(doc, parent)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn json_patch(doc: &Value, patch: &Value) -> Result<Value, String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    if ops.len() > MAX_JSON_PATCH_OPS {
        return Err(format!("more than {MAX_JSON_PATCH_OPS} patch operations"));
    }
    let mut out = doc.clone();
    let mut budget = MAX_JSON_PATCH_ADDED_VALUES;
    // Charges what an operation adds at `path` against the budget and the depth limit.
    let mut charge = |path: &[String], v: &Value| -> Result<(), String> {
        let depth = MAX_DOCUMENT_DEPTH
            .checked_sub(path.len())
            .ok_or("the path is too deep")?;
        let n = size_within(v, depth, budget).ok_or_else(|| {
            format!("the patch would add more than {MAX_JSON_PATCH_ADDED_VALUES} values or nest deeper than {MAX_DOCUMENT_DEPTH} levels")
        })?;
        budget -= n;
        Ok(())
    };
    for op in ops {
        let field = |name: &str| op.get(name).and_then(Value::as_str);
        let path = pointer(field("path").ok_or("operation without a path")?)?;
        let value = || op.get("value").cloned().ok_or("operation without a value");
        match field("op").ok_or("operation without an op")? {
            "add" => {
                let v = value()?;
                charge(&path, &v)?;
                add(&mut out, &path, v)?
            }
            "remove" => {
                remove(&mut out, &path)?;
            }
            "replace" => {
                let v = value()?;
                charge(&path, &v)?;
                remove(&mut out, &path)?;
                add(&mut out, &path, v)?;
            }
            "move" | "copy" => {
                let from = pointer(field("from").ok_or("move/copy without from")?)?;
                let v = if field("op") == Some("move") {
                    remove(&mut out, &from)?
                } else {
                    // Measured before it is cloned: the clone is what could exhaust memory.
                    let source = get_mut(&mut out, &from)?;
                    charge(&path, source)?;
                    source.clone()
                };
                if field("op") == Some("move") {
                    charge(&path, &v)?;
                }
                add(&mut out, &path, v)?;
            }
            "test" => {
                if *get_mut(&mut out, &path)? != value()? {
                    return Err(format!("test operation failed at /{}", path.join("/")));
                }
            }
            other => return Err(format!("unknown patch operation {other:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(
            merge(&doc, &patch),
            json!({"a": "z", "c": {"d": "e"}, "l": [3]})
        );
        assert_eq!(merge(&doc, &json!("x")), json!("x"));
    }

    #[test]
    fn json_patches_cannot_blow_up_a_document() {
        let doubling: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/x{i}")}))
            .collect();
        let err = json_patch(&json!({"a": [1, 2, 3, 4]}), &Value::Array(doubling)).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        let nesting: Vec<Value> = (0..200)
            .map(|_| json!({"op": "copy", "from": "", "path": "/x"}))
            .collect();
        assert!(json_patch(&json!({}), &Value::Array(nesting)).is_err());
        let small = json!([{"op": "copy", "from": "/a", "path": "/b"}]);
        assert_eq!(
            json_patch(&json!({"a": [1]}), &small).unwrap(),
            json!({"a": [1], "b": [1]})
        );
    }

    #[test]
    fn json_patch_follows_rfc_6902() {
        let doc = json!({"spec": {"replicas": 1, "list": ["a", "b"]}, "metadata": {"labels": {"x": "1"}}});
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/-", "value": "c"},
            {"op": "add", "path": "/spec/list/0", "value": "z"},
            {"op": "remove", "path": "/metadata/labels/x"},
            {"op": "add", "path": "/metadata/labels/a~1b", "value": "2"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
            {"op": "test", "path": "/spec/copy", "value": 3}
        ]);
        let out = json_patch(&doc, &patch).unwrap();
        assert_eq!(
            out["spec"],
            json!({"replicas": 3, "list": ["z", "a", "b", "c"], "copy": 3})
        );
        assert_eq!(out["metadata"]["labels"], json!({"a/b": "2"}));
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 2}]);
        assert!(json_patch(&doc, &failing).is_err());
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(&doc, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "side:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
            {"name": "side", "$patch": "delete"},
            {"name": "new", "image": "new:1"}
        ]}}}});
        let out = strategic(&doc, &patch, "").unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(
            cs[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(cs[1]["name"], "new");
        assert!(out["spec"]["template"]["spec"]
            .get("$setElementOrder/containers")
            .is_none());
    }

    #[test]
    fn strategic_merge_directives_and_plain_lists() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x"], "sel": {"k": "v"}}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}},
            "spec": {"args": ["y", "z"], "sel": {"$patch": "replace", "n": "m"}}});
        let out = strategic(&doc, &patch, "").unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(out["spec"]["args"], json!(["y", "z"]));
        assert_eq!(out["spec"]["sel"], json!({"n": "m"}));
        let gone = strategic(&doc, &json!({"spec": {"$patch": "delete"}}), "").unwrap();
        assert!(gone.get("spec").is_none());
        assert!(strategic(&doc, &json!({"$patch": "explode"}), "").is_err());
    }

    #[test]
    fn content_types_name_the_kinds() {
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchKind::Strategic)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }
}
