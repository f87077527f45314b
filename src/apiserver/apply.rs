//! Server-side apply and field ownership (`metadata.managedFields`): a simplified
//! structured-merge-diff. Pure functions over JSON values; the handler supplies the clock.
//!
//! A *field set* is a set of paths to the leaves of an object. A path is a list of
//! elements in upstream's FieldsV1 spelling: `f:<field>` for a map key, `k:{"name":"c"}` for
//! an item of an associative list (one whose items are objects with a merge key, from
//! [`super::patch::merge_key`]), and, when decoding, `v:<json>` (set item) and `i:<n>`
//! (index). An item of an associative list is itself a member of the set (FieldsV1's `.`),
//! as are its leaves. Scalars, other lists and empty maps are atomic leaves.
//! `apiVersion`, `kind` and the server-owned metadata ([`SERVER_OWNED_META`]) are owned by
//! nobody; on a resource with a status subresource, `status` is owned only through it.
//!
//! Every write through the API records who changed what: an apply stores the applier's
//! field set in its `Apply` entry; other writes add the paths whose values they changed to
//! their manager's `Update` entry (per subresource), and every other entry loses those
//! paths. Paths that no longer exist are dropped from every entry, empty entries go, and at
//! most [`MAX_UPDATE_ENTRIES`] `Update` entries are kept (older ones are merged into
//! `ancient-changes`, as upstream does), so managedFields never grow without bound.
//!
//! Simplifications against upstream's structured-merge-diff:
//! - no schema: associativity comes from the strategic-merge key table, with one key per
//!   list (upstream's `ports` are keyed by `containerPort` *and* `protocol`); a list whose
//!   items lack the key or repeat it is atomic; `listType=set` lists (such as finalizers)
//!   are atomic too;
//! - `null` in an applied configuration is ignored (neither set nor owned);
//! - a changed value is compared by JSON equality; an associative list item or a map only
//!   "changes" when it appears;
//! - client-sent `managedFields` are ignored: the server always computes them (upstream
//!   accepts replacements and resets on `[]`);
//! - fields dropped from a configuration are removed leaf by leaf (maps left empty stay);
//! - a manager never conflicts with itself (its own `Update` entry), and the apply version
//!   is the served version (no conversion).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::patch;
use crate::api::status::{StatusCause, StatusDetails};
use crate::api::Status;

/// The Content-Type of an apply request.
pub const APPLY_PATCH_MEDIA_TYPE: &str = "application/apply-patch+yaml";
/// The operation of an entry written by an apply.
pub const APPLY: &str = "Apply";
/// The operation of an entry written by any other write.
pub const UPDATE: &str = "Update";
/// Most `Update` entries kept on one object (upstream's cap); older ones are merged.
pub const MAX_UPDATE_ENTRIES: usize = 10;
/// The manager that collects the oldest `Update` entries beyond the cap.
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// Longest field manager name (upstream's limit), in bytes.
pub const MAX_MANAGER_BYTES: usize = 128;
/// Metadata the server sets, or that identifies the object: never owned.
pub const SERVER_OWNED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// One path to a field: FieldsV1 elements (`f:spec`, `k:{"name":"c"}`, ...).
pub type Path = Vec<String>;
/// A set of paths; ordered, so its encoding is deterministic.
pub type FieldSet = BTreeSet<Path>;

/// True for an apply request's Content-Type.
pub fn is_apply(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case(APPLY_PATCH_MEDIA_TYPE)
}

/// The manager of a write without `fieldManager`: the User-Agent's first token before `/`.
pub fn manager_from_user_agent(user_agent: &str) -> Option<String> {
    let prefix = user_agent.split('/').next().unwrap_or("").trim();
    if prefix.is_empty() {
        return None;
    }
    let mut end = prefix.len().min(MAX_MANAGER_BYTES);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    Some(prefix[..end].to_string())
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// [`APPLY`] or [`UPDATE`].
    pub operation: String,
    pub api_version: String,
    pub time: String,
    /// Empty for the main resource, else `status`, `scale`, ...
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// The key of an associative list at `field` of the object at strategic path `spath`:
/// known to the merge-key table, and present and unique in every item.
fn list_key(spath: &str, field: &str, items: &[Value]) -> Option<&'static str> {
    let key = patch::merge_key(spath, field)?;
    let mut seen = BTreeSet::new();
    for item in items {
        let id = item.get(key).filter(|v| !v.is_null())?;
        if !seen.insert(id.to_string()) {
            return None;
        }
    }
    Some(key)
}

/// The `k:` element addressing `item` of a list keyed by `key`.
fn item_element(key: &str, item: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), item[key].clone());
    format!("k:{}", Value::Object(m))
}

/// The field set of an object: every owned leaf, and every associative list item.
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut path = Path::new();
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let Some(meta) = v.as_object() else { continue };
                path.push("f:metadata".into());
                for (mk, mv) in meta {
                    if !SERVER_OWNED_META.contains(&mk.as_str()) {
                        walk_field(".metadata", mk, mv, &mut path, &mut out);
                    }
                }
                path.pop();
            }
            _ => walk_field("", k, v, &mut path, &mut out),
        }
    }
    out
}

/// Adds the paths of field `k` (value `v`) of the object at strategic path `spath`.
fn walk_field(spath: &str, k: &str, v: &Value, path: &mut Path, out: &mut FieldSet) {
    if v.is_null() {
        return;
    }
    path.push(format!("f:{k}"));
    let child = format!("{spath}.{k}");
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (ck, cv) in m {
                walk_field(&child, ck, cv, path, out);
            }
        }
        Value::Array(items) => match list_key(spath, k, items) {
            Some(key) => {
                let item_path = format!("{child}[]");
                for item in items {
                    path.push(item_element(key, item));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (ck, cv) in m {
                            walk_field(&item_path, ck, cv, path, out);
                        }
                    }
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
    path.pop();
}

/// The index of the list item an element (`k:`, `v:` or `i:`) addresses.
fn position(items: &[Value], element: &str) -> Option<usize> {
    if let Some(k) = element.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(k).ok()?;
        items
            .iter()
            .position(|it| want.iter().all(|(f, v)| it.get(f) == Some(v)))
    } else if let Some(v) = element.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|it| *it == want)
    } else {
        let i: usize = element.strip_prefix("i:")?.parse().ok()?;
        (i < items.len()).then_some(i)
    }
}

/// The value at `path`, if present (and not null).
pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for e in path {
        cur = match e.strip_prefix("f:") {
            Some(name) => cur.as_object()?.get(name).filter(|v| !v.is_null())?,
            None => {
                let items = cur.as_array()?;
                &items[position(items, e)?]
            }
        };
    }
    Some(cur)
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for e in path {
        cur = match e.strip_prefix("f:") {
            Some(name) => cur.as_object_mut()?.get_mut(name)?,
            None => {
                let i = position(cur.as_array()?, e)?;
                &mut cur.as_array_mut()?[i]
            }
        };
    }
    Some(cur)
}

/// Removes the field or list item at `path`, if present.
pub fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(p) = get_mut(v, parent) else {
        return;
    };
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(m) = p.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(items) = p.as_array_mut() {
        if let Some(i) = position(items, last) {
            items.remove(i);
        }
    }
}

/// True if setting `new` where `old` is would change the object: a leaf differs, or a map
/// or list item appears.
fn differs(new: &Value, old: Option<&Value>) -> bool {
    match (new, old) {
        (_, None) => true,
        (Value::Object(_), Some(Value::Object(_))) => false,
        (n, Some(o)) => n != o,
    }
}

/// `v` without null-valued map entries (what an apply sets).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// `config` merged into `live` (object at strategic path `spath`): maps merge, associative
/// lists merge item by item (live order, new items appended), anything else is replaced.
pub fn merge(live: &Value, config: &Value, spath: &str) -> Value {
    let (Some(l), Some(c)) = (live.as_object(), config.as_object()) else {
        return without_nulls(config);
    };
    let mut out = l.clone();
    for (k, cv) in c {
        if cv.is_null() {
            continue;
        }
        let child = format!("{spath}.{k}");
        let merged = match (out.get(k), cv) {
            (Some(Value::Array(la)), Value::Array(ca)) => {
                match (list_key(spath, k, la), list_key(spath, k, ca)) {
                    (Some(key), Some(_)) => {
                        Value::Array(merge_items(la, ca, key, &format!("{child}[]")))
                    }
                    _ => without_nulls(cv),
                }
            }
            (Some(lv), _) => merge(lv, cv, &child),
            (None, _) => without_nulls(cv),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

fn merge_items(live: &[Value], config: &[Value], key: &str, spath: &str) -> Vec<Value> {
    let mut out = live.to_vec();
    for item in config {
        match out.iter().position(|o| o.get(key) == item.get(key)) {
            Some(i) => out[i] = merge(&out[i], item, spath),
            None => out.push(without_nulls(item)),
        }
    }
    out
}

/// Encodes a field set as FieldsV1 (`{"f:data": {"f:key": {}}}`, `.` for a member that
/// has members below it).
pub fn encode(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn value(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &n.children {
            m.insert(k.clone(), value(c));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in set {
        let mut n = &mut root;
        for e in path {
            n = n.children.entry(e.clone()).or_default();
        }
        n.member = true;
    }
    value(&root)
}

/// Decodes FieldsV1 into a field set.
pub fn decode(v: &Value) -> Result<FieldSet, String> {
    fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) -> Result<(), String> {
        let m = v.as_object().ok_or("FieldsV1 nodes must be objects")?;
        if m.is_empty() && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in m {
            if k == "." {
                if path.is_empty() {
                    return Err("the root of FieldsV1 cannot be a member".into());
                }
                out.insert(path.clone());
                continue;
            }
            if !["f:", "k:", "v:", "i:"].iter().any(|p| k.starts_with(p)) {
                return Err(format!("invalid FieldsV1 element {k:?}"));
            }
            path.push(k.clone());
            walk(child, path, out)?;
            path.pop();
        }
        Ok(())
    }
    let mut out = FieldSet::new();
    walk(v, &mut Path::new(), &mut out)?;
    Ok(out)
}

/// The object's `managedFields` (entries this server cannot read are dropped).
pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            if e.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
                return None;
            }
            Some(Entry {
                manager: text("manager")?,
                operation: text("operation")?,
                api_version: text("apiVersion").unwrap_or_default(),
                time: text("time").unwrap_or_default(),
                subresource: text("subresource").unwrap_or_default(),
                fields: decode(e.get("fieldsV1")?).ok()?,
            })
        })
        .collect()
}

/// Merges the oldest `Update` entries into [`ANCIENT_CHANGES`] beyond the cap.
fn cap(entries: &mut Vec<Entry>) {
    let updates = |es: &Vec<Entry>| es.iter().filter(|e| e.operation == UPDATE).count();
    while updates(entries) > MAX_UPDATE_ENTRIES {
        let oldest = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.operation == UPDATE && e.manager != ANCIENT_CHANGES)
            .min_by(|(_, a), (_, b)| (&a.time, &a.manager).cmp(&(&b.time, &b.manager)))
            .map(|(i, _)| i);
        let Some(i) = oldest else { return };
        let old = entries.remove(i);
        match entries
            .iter_mut()
            .find(|e| e.is(ANCIENT_CHANGES, UPDATE, ""))
        {
            Some(a) => a.fields.extend(old.fields),
            None => entries.push(Entry {
                manager: ANCIENT_CHANGES.into(),
                subresource: String::new(),
                ..old
            }),
        }
    }
}

/// Stores `entries` as the object's `managedFields`: empty ones dropped, capped, sorted
/// (operation, time, manager, subresource).
pub fn set_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    cap(&mut entries);
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.subresource,
        ))
    });
    let Some(meta) = obj.as_object_mut().map(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
    }) else {
        return;
    };
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let list = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), Value::String(e.manager.clone()));
            m.insert("operation".into(), Value::String(e.operation.clone()));
            m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
            m.insert("time".into(), Value::String(e.time.clone()));
            m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            m.insert("fieldsV1".into(), encode(&e.fields));
            if !e.subresource.is_empty() {
                m.insert("subresource".into(), Value::String(e.subresource.clone()));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

/// Who writes, and when.
pub struct Writer<'a> {
    pub manager: &'a str,
    /// Empty for the main resource.
    pub subresource: &'a str,
    pub api_version: &'a str,
    /// RFC 3339.
    pub now: &'a str,
    /// The resource has a status subresource and this is the main resource: `status` is
    /// not owned through it.
    pub skip_status: bool,
}

fn is_status(p: &Path) -> bool {
    p.first().is_some_and(|e| e == "f:status")
}

/// Records a non-apply write (`old` is `None` for a create) in `new`'s `managedFields`: the
/// writer's `Update` entry gains the paths whose values changed, which every other entry
/// loses; paths gone from `new` are dropped from every entry.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer) {
    let mut entries = old.map(entries).unwrap_or_default();
    let changed: FieldSet = fields_of(new)
        .into_iter()
        .filter(|p| !(w.skip_status && is_status(p)))
        .filter(|p| match old {
            None => true,
            Some(o) => differs(get(new, p).unwrap_or(&Value::Null), get(o, p)),
        })
        .collect();
    for e in &mut entries {
        e.fields.retain(|p| get(new, p).is_some());
        if !e.is(w.manager, UPDATE, w.subresource) {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.is(w.manager, UPDATE, w.subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = w.now.to_string();
                e.api_version = w.api_version.to_string();
            }
            None => entries.push(Entry {
                manager: w.manager.to_string(),
                operation: UPDATE.into(),
                api_version: w.api_version.to_string(),
                time: w.now.to_string(),
                subresource: w.subresource.to_string(),
                fields: changed,
            }),
        }
    }
    set_entries(new, entries);
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub subresource: String,
    pub path: Path,
}

impl Conflict {
    fn owner(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if !self.api_version.is_empty() {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// A path as upstream prints it: `.spec.containers[name="c"].image`.
pub fn render(path: &[String]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// The 409 an apply with unforced conflicts gets, worded as upstream's.
pub fn conflict_status(conflicts: &[Conflict]) -> Status {
    let n = conflicts.len();
    let detail = if let [c] = conflicts {
        format!("conflict with {}: {}", c.owner(), render(&c.path))
    } else {
        let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in conflicts {
            by_owner.entry(c.owner()).or_default().push(render(&c.path));
        }
        let mut lines = Vec::new();
        for (owner, paths) in by_owner {
            lines.push(format!("conflicts with {owner}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        lines.join("\n")
    };
    let plural = if n == 1 { "" } else { "s" };
    let mut s = Status::failure(
        409,
        "Conflict",
        format!("Apply failed with {n} conflict{plural}: {detail}"),
    );
    s.details = Some(StatusDetails {
        causes: conflicts
            .iter()
            .map(|c| StatusCause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", c.owner()),
                field: render(&c.path),
            })
            .collect(),
        ..Default::default()
    });
    s
}

/// One apply request.
pub struct Applier<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    /// RFC 3339.
    pub now: &'a str,
    /// `force=true`: take conflicting fields over.
    pub force: bool,
}

/// The non-empty entries in a fixed order, for comparing two lists of entries.
fn sorted_entries(list: &[Entry]) -> Vec<&Entry> {
    let mut l: Vec<&Entry> = list.iter().filter(|e| !e.fields.is_empty()).collect();
    l.sort_by(|x, y| {
        (&x.operation, &x.manager, &x.subresource).cmp(&(&y.operation, &y.manager, &y.subresource))
    });
    l
}

fn without_managed_fields(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    out
}

/// Applies `config` for `a.manager` to `live` (`None`: the object does not exist). Returns
/// the new object with its `managedFields`, `live` itself when nothing changes, or the
/// conflicts when fields other managers own would change and `force` is not set.
pub fn apply(live: Option<&Value>, config: &Value, a: &Applier) -> Result<Value, Vec<Conflict>> {
    let empty = Value::Object(Map::new());
    let live_v = live.unwrap_or(&empty);
    let before = entries(live_v);
    let mut entries = before.clone();
    let config = without_managed_fields(config);
    let applied = fields_of(&config);
    let mut changed = FieldSet::new();
    let mut conflicts = Vec::new();
    for p in &applied {
        if !differs(get(&config, p).unwrap_or(&Value::Null), get(live_v, p)) {
            continue;
        }
        for e in entries
            .iter()
            .filter(|e| e.manager != a.manager && e.fields.contains(p))
        {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                path: p.clone(),
            });
        }
        changed.insert(p.clone());
    }
    if !conflicts.is_empty() && !a.force {
        return Err(conflicts);
    }
    let mut out = merge(live_v, &config, "");
    let mine = |e: &Entry| e.is(a.manager, APPLY, "");
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.fields.retain(|p| !changed.contains(p));
    }
    // Fields dropped from this manager's configuration go, unless someone else owns them
    // (or something below them).
    let owned_by_others = |p: &Path| {
        entries.iter().filter(|e| !mine(e)).any(|e| {
            e.fields
                .range(p.clone()..)
                .next()
                .is_some_and(|q| q.starts_with(p))
        })
    };
    let dropped: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied.contains(*p) && !owned_by_others(p))
        .collect();
    for p in dropped {
        remove(&mut out, p);
    }
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.fields.retain(|p| get(&out, p).is_some());
    }
    let old_time = entries.iter().find(|e| mine(e)).map(|e| e.time.clone());
    entries.retain(|e| !mine(e));
    entries.push(Entry {
        manager: a.manager.to_string(),
        operation: APPLY.into(),
        api_version: a.api_version.to_string(),
        time: old_time.clone().unwrap_or_default(),
        subresource: String::new(),
        fields: applied,
    });
    // Nothing to write when the values and every manager's fields stay as they were
    // (`out` keeps live's managedFields and resourceVersion: the config carries neither).
    if old_time.is_some() && sorted_entries(&entries) == sorted_entries(&before) && out == *live_v {
        return Ok(live_v.clone());
    }
    if let Some(e) = entries.iter_mut().find(|e| mine(e)) {
        e.time = a.now.to_string();
    }
    set_entries(&mut out, entries);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const T1: &str = "2025-01-01T00:00:00Z";
    const T2: &str = "2025-01-02T00:00:00Z";

    fn applier<'a>(manager: &'a str, now: &'a str, force: bool) -> Applier<'a> {
        Applier {
            manager,
            api_version: "v1",
            now,
            force,
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": data})
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        entries(obj)
            .into_iter()
            .map(|e| (e.manager, e.operation))
            .collect()
    }

    fn owned(obj: &Value, manager: &str) -> Vec<String> {
        entries(obj)
            .into_iter()
            .filter(|e| e.manager == manager)
            .flat_map(|e| e.fields.into_iter().map(|p| render(&p)))
            .collect()
    }

    #[test]
    fn fields_v1_is_upstreams_encoding() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "u", "labels": {"app": "x"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "i", "ports": [{"containerPort": 80}], "args": ["a"]}]}}}});
        let set = fields_of(&d);
        assert_eq!(
            encode(&set),
            json!({"f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                    ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}}}}}}})
        );
        assert_eq!(decode(&encode(&set)).unwrap(), set);
        let image: Path = ["f:spec", "f:template", "f:spec", "f:containers"]
            .iter()
            .map(|s| s.to_string())
            .chain(["k:{\"name\":\"c\"}".to_string(), "f:image".to_string()])
            .collect();
        assert_eq!(
            render(&image),
            ".spec.template.spec.containers[name=\"c\"].image"
        );
        assert_eq!(get(&d, &image), Some(&json!("i")));
        assert!(decode(&json!({".": {}})).is_err());
        assert!(decode(&json!({"x:y": {}})).is_err());
    }

    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-c]{1,2}".prop_map(|s| format!("f:{s}")),
            "[a-c]{1,2}".prop_map(|s| format!("k:{}", json!({"name": s}))),
            (0i64..3).prop_map(|n| format!("k:{}", json!({"containerPort": n}))),
            "[a-c]".prop_map(|s| format!("v:{}", json!(s))),
            (0usize..3).prop_map(|i| format!("i:{i}")),
        ]
    }

    proptest! {
        #[test]
        fn fields_v1_round_trips(set in prop::collection::btree_set(
            prop::collection::vec(element(), 1..5), 0..12)) {
            let encoded = encode(&set);
            prop_assert_eq!(decode(&encoded).unwrap(), set.clone());
            // Through the stored form too.
            let text = serde_json::to_string(&encoded).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decode(&back).unwrap(), set);
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let config = cm(json!({"a": "1", "b": "2"}));
        let first = apply(None, &config, &applier("m", T1, false)).unwrap();
        assert_eq!(first["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(managers(&first), [("m".to_string(), APPLY.to_string())]);
        assert_eq!(owned(&first, "m"), [".data.a", ".data.b"]);
        let second = apply(Some(&first), &config, &applier("m", T2, false)).unwrap();
        assert_eq!(second, first, "same object, same managedFields and time");
    }

    #[test]
    fn disjoint_managers_keep_their_fields() {
        let live = apply(None, &cm(json!({"a": "1"})), &applier("m", T1, false)).unwrap();
        let live = apply(
            Some(&live),
            &cm(json!({"b": "2"})),
            &applier("n", T2, false),
        )
        .unwrap();
        assert_eq!(live["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(owned(&live, "m"), [".data.a"]);
        assert_eq!(owned(&live, "n"), [".data.b"]);
        // Re-applying either configuration changes nothing.
        let again = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            &applier("m", T2, false),
        )
        .unwrap();
        assert_eq!(again, live);
    }

    #[test]
    fn conflicts_are_refused_unless_forced() {
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "1"})),
            &applier("m", T1, false),
        )
        .unwrap();
        let theirs = cm(json!({"a": "2"}));
        let err = apply(Some(&live), &theirs, &applier("n", T2, false)).unwrap_err();
        assert_eq!(err.len(), 1);
        let s = conflict_status(&err);
        assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            s.message,
            "Apply failed with 1 conflict: conflict with \"m\" using v1: .data.a"
        );
        let cause = &s.details.as_ref().unwrap().causes[0];
        assert_eq!(
            (cause.reason.as_str(), cause.field.as_str()),
            ("FieldManagerConflict", ".data.a")
        );
        // The same value is no conflict: both own it.
        let shared = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            &applier("n", T2, false),
        )
        .unwrap();
        assert_eq!(owned(&shared, "m"), [".data.a", ".data.b"]);
        assert_eq!(owned(&shared, "n"), [".data.a"]);
        let forced = apply(Some(&live), &theirs, &applier("n", T2, true)).unwrap();
        assert_eq!(forced["data"], json!({"a": "2", "b": "1"}));
        assert_eq!(owned(&forced, "m"), [".data.b"]);
        assert_eq!(owned(&forced, "n"), [".data.a"]);
        let two = apply(
            Some(&live),
            &cm(json!({"a": "3", "b": "3"})),
            &applier("n", T2, false),
        );
        let s = conflict_status(&two.unwrap_err());
        assert!(
            s.message.starts_with("Apply failed with 2 conflicts: conflicts with \"m\" using v1:\n- .data.a\n- .data.b"),
            "{}",
            s.message
        );
    }

    #[test]
    fn dropped_fields_go_unless_someone_else_owns_them() {
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "1", "c": "1"})),
            &applier("m", T1, false),
        )
        .unwrap();
        let live = apply(
            Some(&live),
            &cm(json!({"b": "1"})),
            &applier("n", T1, false),
        )
        .unwrap();
        let out = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            &applier("m", T2, false),
        )
        .unwrap();
        assert_eq!(
            out["data"],
            json!({"a": "1", "b": "1"}),
            "c removed, b kept for n"
        );
        assert_eq!(owned(&out, "m"), [".data.a"]);
        assert_eq!(owned(&out, "n"), [".data.b"]);
    }

    fn deploy(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn associative_lists_merge_by_key() {
        let two = deploy(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let live = apply(None, &two, &applier("m", T1, false)).unwrap();
        // Another manager sets a field in container a only.
        let env = deploy(json!([{"name": "a", "env": [{"name": "E", "value": "1"}]}]));
        let live = apply(Some(&live), &env, &applier("n", T1, false)).unwrap();
        let cs = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            *cs,
            json!([{"name": "a", "image": "a:1", "env": [{"name": "E", "value": "1"}]},
                {"name": "b", "image": "b:1"}])
        );
        // m drops container b and changes a's image: b goes, n's env stays.
        let one = deploy(json!([{"name": "a", "image": "a:2"}]));
        let out = apply(Some(&live), &one, &applier("m", T2, false)).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "a:2", "env": [{"name": "E", "value": "1"}]}])
        );
        // m drops container a too, but n still owns a field in it: it stays.
        let none = deploy(json!([{"name": "z", "image": "z"}]));
        let out = apply(Some(&out), &none, &applier("m", T2, false)).unwrap();
        let names: Vec<&Value> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("a"), &json!("z")]);
    }

    #[test]
    fn updates_record_changed_fields_and_take_them_from_others() {
        let w = |manager, now| Writer {
            manager,
            subresource: "",
            api_version: "v1",
            now,
            skip_status: true,
        };
        let mut created = cm(json!({"a": "1"}));
        created["status"] = json!({"x": 1});
        record_update(None, &mut created, &w("kubectl-create", T1));
        assert_eq!(owned(&created, "kubectl-create"), [".data.a"]);
        let mut edited = created.clone();
        edited["data"] = json!({"a": "2", "b": "1"});
        record_update(Some(&created), &mut edited, &w("kubectl-edit", T2));
        assert!(owned(&edited, "kubectl-create").is_empty());
        assert_eq!(owned(&edited, "kubectl-edit"), [".data.a", ".data.b"]);
        assert_eq!(managers(&edited), [("kubectl-edit".into(), UPDATE.into())]);
        // A write that changes nothing leaves managedFields alone.
        let mut same = edited.clone();
        record_update(Some(&edited), &mut same, &w("other", T2));
        assert_eq!(same, edited);
        // An apply now conflicts with the updater.
        let err = apply(
            Some(&edited),
            &cm(json!({"a": "3"})),
            &applier("m", T2, false),
        );
        assert_eq!(err.unwrap_err()[0].manager, "kubectl-edit");
    }

    #[test]
    fn update_entries_are_capped() {
        let mut obj = cm(json!({}));
        for i in 0..15 {
            let before = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let name = format!("m{i:02}");
            let now = format!("2025-01-01T00:00:{i:02}Z");
            let w = Writer {
                manager: &name,
                subresource: "",
                api_version: "v1",
                now: &now,
                skip_status: false,
            };
            record_update(Some(&before), &mut obj, &w);
        }
        let es = entries(&obj);
        assert_eq!(es.len(), MAX_UPDATE_ENTRIES);
        assert_eq!(es[0].manager, ANCIENT_CHANGES);
        assert_eq!(es[0].fields.len(), 6);
    }

    #[test]
    fn managers_from_user_agents() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/abc").as_deref(),
            Some("kubectl")
        );
        assert_eq!(manager_from_user_agent(""), None);
        assert!(is_apply("application/apply-patch+yaml; charset=utf-8"));
    }
}
