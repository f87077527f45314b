//! Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` turns a list
//! or an object into a `meta.k8s.io/v1` Table with upstream's columns per resource, so
//! `kubectl get` shows READY, STATUS, AGE and friends. Each row carries the object's metadata
//! (`PartialObjectMetadata`), which `-A` and `--show-labels` need.

use serde_json::{json, Value};

use super::resources::Resource;
use crate::api::time;

/// Whether the client asked for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// Kubernetes' short age format (`45s`, `5m10s`, `3h`, `2d4h`, `120d`).
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => format!("{}m{}s", s / 60, s % 60).replace("m0s", "m"),
        600..=10_799 => format!("{}m", s / 60),
        10_800..=28_799 => format!("{}h{}m", s / 3600, s % 3600 / 60).replace("h0m", "h"),
        28_800..=172_799 => format!("{}h", s / 3600),
        172_800..=691_199 => format!("{}d{}h", s / 86_400, s % 86_400 / 3600).replace("d0h", "d"),
        691_200..=63_071_999 => format!("{}d", s / 86_400),
        63_072_000..=252_287_999 => {
            format!("{}y{}d", s / 31_536_000, s % 31_536_000 / 86_400).replace("y0d", "y")
        }
        _ => format!("{}y", s / 31_536_000),
    }
}

/// How long ago a timestamp was (`<unknown>` without one).
fn since(t: &Value, now_ms: i64) -> String {
    match t.as_str().and_then(time::parse_rfc3339) {
        Some(ms) => human_age((now_ms - ms) / 1000),
        None => "<unknown>".into(),
    }
}

fn age(obj: &Value, now_ms: i64) -> String {
    since(&obj["metadata"]["creationTimestamp"], now_ms)
}

/// A column definition; `wide` columns show only with `-o wide` (priority 1).
fn column(name: &str, type_: &str, wide: bool) -> Value {
    json!({"name": name, "type": type_, "format": "", "description": "",
        "priority": i32::from(wide)})
}

/// A row: its cells and the object's metadata (`PartialObjectMetadata`, which `-A` and
/// `--show-labels` read).
fn table_row(cells: Vec<Value>, obj: &Value) -> Value {
    json!({
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        },
    })
}

fn table(list_meta: Value, defs: Vec<Value>, rows: Vec<Value>) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "<none>".into(),
        Value::String(s) if s.is_empty() => "<none>".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn count(v: &Value) -> i64 {
    v.as_object().map(|m| m.len() as i64).unwrap_or(0)
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = obj["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let deleting = obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let waiting = statuses
        .iter()
        .find_map(|c| c["state"]["waiting"]["reason"].as_str());
    let status = match (deleting, waiting) {
        (true, _) => "Terminating".to_string(),
        (false, Some(reason)) => reason.to_string(),
        _ => obj["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_string(),
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
    ]
}

/// Columns after NAME and before AGE, as upstream prints them, and the cells of one object.
fn columns(r: &Resource) -> &'static [&'static str] {
    match r.plural {
        "pods" => &["Ready", "Status", "Restarts"],
        "namespaces" => &["Status"],
        "nodes" => &["Status", "Roles", "Version"],
        "services" => &["Type", "Cluster-IP", "External-IP", "Port(s)"],
        "deployments" => &["Ready", "Up-to-date", "Available"],
        "replicasets" => &["Desired", "Current", "Ready"],
        "daemonsets" => &[
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
        ],
        "configmaps" => &["Data"],
        "secrets" => &["Type", "Data"],
        _ => &[],
    }
}

fn node_ready(obj: &Value) -> String {
    let conds = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ready = conds.iter().find(|c| c["type"] == "Ready");
    let mut s = match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_string(),
        _ => "NotReady".to_string(),
    };
    if obj["spec"]["unschedulable"] == true {
        s.push_str(",SchedulingDisabled");
    }
    s
}

fn service_ports(obj: &Value) -> String {
    let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() {
        return "<none>".into();
    }
    let one = |p: &Value| {
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        match p["nodePort"].as_i64() {
            Some(np) => format!("{}:{np}/{proto}", p["port"]),
            None => format!("{}/{proto}", p["port"]),
        }
    };
    ports.iter().map(one).collect::<Vec<_>>().join(",")
}

fn cells(r: &Resource, obj: &Value) -> Vec<Value> {
    let st = &obj["status"];
    let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
    match r.plural {
        "pods" => pod_cells(obj),
        "namespaces" => vec![json!(st["phase"].as_str().unwrap_or("Active"))],
        "nodes" => vec![
            json!(node_ready(obj)),
            json!("<none>"),
            json!(text(&st["nodeInfo"]["kubeletVersion"])),
        ],
        "services" => vec![
            json!(obj["spec"]["type"].as_str().unwrap_or("ClusterIP")),
            json!(text(&obj["spec"]["clusterIP"])),
            json!(text(&st["loadBalancer"]["ingress"][0]["ip"])),
            json!(service_ports(obj)),
        ],
        "deployments" => vec![
            json!(format!(
                "{}/{}",
                st["readyReplicas"].as_i64().unwrap_or(0),
                obj["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            n(&st["updatedReplicas"]),
            n(&st["availableReplicas"]),
        ],
        "replicasets" => vec![
            n(&obj["spec"]["replicas"]),
            n(&st["replicas"]),
            n(&st["readyReplicas"]),
        ],
        "daemonsets" => vec![
            n(&st["desiredNumberScheduled"]),
            n(&st["currentNumberScheduled"]),
            n(&st["numberReady"]),
            n(&st["updatedNumberScheduled"]),
            n(&st["numberAvailable"]),
            json!(selector_text(
                &obj["spec"]["template"]["spec"]["nodeSelector"]
            )),
        ],
        "configmaps" => vec![json!(count(&obj["data"]) + count(&obj["binaryData"]))],
        "secrets" => vec![
            json!(obj["type"].as_str().unwrap_or("Opaque")),
            json!(count(&obj["data"])),
        ],
        _ => vec![],
    }
}

/// `k=v,k2=v2` of a label map (`<none>` when empty).
fn selector_text(v: &Value) -> String {
    let pairs: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// Columns `-o wide` adds after AGE (priority 1), as upstream prints them.
fn wide_columns(r: &Resource) -> &'static [&'static str] {
    match r.plural {
        "pods" => &["IP", "Node", "Nominated Node", "Readiness Gates"],
        "nodes" => &[
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime",
        ],
        "services" => &["Selector"],
        "deployments" | "replicasets" | "daemonsets" => &["Containers", "Images", "Selector"],
        _ => &[],
    }
}

fn joined(list: &Value, field: &str) -> String {
    let parts: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c[field].as_str().unwrap_or("").to_string())
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn wide_cells(r: &Resource, obj: &Value) -> Vec<Value> {
    let (spec, st) = (&obj["spec"], &obj["status"]);
    let address = |kind: &str| {
        st["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == kind)
            .map_or("<none>".to_string(), |a| text(&a["address"]))
    };
    match r.plural {
        "pods" => vec![
            json!(text(&st["podIP"])),
            json!(text(&spec["nodeName"])),
            json!(text(&st["nominatedNodeName"])),
            json!("<none>"),
        ],
        "nodes" => vec![
            json!(address("InternalIP")),
            json!(address("ExternalIP")),
            json!(text(&st["nodeInfo"]["osImage"])),
            json!(text(&st["nodeInfo"]["kernelVersion"])),
            json!(text(&st["nodeInfo"]["containerRuntimeVersion"])),
        ],
        "services" => vec![json!(selector_text(&spec["selector"]))],
        "deployments" | "replicasets" | "daemonsets" => {
            let containers = &spec["template"]["spec"]["containers"];
            vec![
                json!(joined(containers, "name")),
                json!(joined(containers, "image")),
                json!(selector_text(&spec["selector"]["matchLabels"])),
            ]
        }
        _ => vec![],
    }
}

fn row(r: &Resource, obj: &Value, now_ms: i64) -> Value {
    let mut row_cells = vec![obj["metadata"]["name"].clone()];
    row_cells.extend(cells(r, obj));
    row_cells.push(json!(age(obj, now_ms)));
    row_cells.extend(wide_cells(r, obj));
    table_row(row_cells, obj)
}

/// Upstream's event columns (name last, not first): name, type, shown only with `-o wide`.
const EVENT_COLUMNS: [(&str, &str, bool); 10] = [
    ("Last Seen", "string", false),
    ("Type", "string", false),
    ("Reason", "string", false),
    ("Object", "string", false),
    ("Subobject", "string", true),
    ("Source", "string", true),
    ("Message", "string", false),
    ("First Seen", "string", true),
    ("Count", "integer", true),
    ("Name", "string", true),
];

fn event_row(e: &Value, now_ms: i64) -> Vec<Value> {
    let last = [
        &e["lastTimestamp"],
        &e["eventTime"],
        &e["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find(|t| t.is_string())
    .unwrap_or(&Value::Null);
    let first = if e["firstTimestamp"].is_string() {
        &e["firstTimestamp"]
    } else {
        last
    };
    let io = &e["involvedObject"];
    let object = format!(
        "{}/{}",
        io["kind"].as_str().unwrap_or("").to_lowercase(),
        io["name"].as_str().unwrap_or("")
    );
    let source = e["source"]["component"]
        .as_str()
        .unwrap_or(e["reportingComponent"].as_str().unwrap_or(""));
    vec![
        json!(since(last, now_ms)),
        json!(e["type"].as_str().unwrap_or("")),
        json!(e["reason"].as_str().unwrap_or("")),
        json!(object),
        json!(io["fieldPath"].as_str().unwrap_or("")),
        json!(source),
        json!(e["message"].as_str().unwrap_or("").trim()),
        json!(since(first, now_ms)),
        json!(e["count"].as_i64().unwrap_or(1)),
        e["metadata"]["name"].clone(),
    ]
}

fn event_table(objects: &[Value], list_meta: Value, now_ms: i64) -> Value {
    let defs = EVENT_COLUMNS
        .iter()
        .map(|&(name, type_, wide)| column(name, type_, wide))
        .collect();
    let rows = objects
        .iter()
        .map(|e| table_row(event_row(e, now_ms), e))
        .collect();
    table(list_meta, defs, rows)
}

/// Upstream's PriorityClass columns: typed cells, and PreemptionPolicy after Age yet shown
/// by default (name, type).
const PRIORITY_CLASS_COLUMNS: [(&str, &str); 5] = [
    ("Name", "string"),
    ("Value", "integer"),
    ("Global-Default", "boolean"),
    ("Age", "string"),
    ("PreemptionPolicy", "string"),
];

fn priority_class_table(objects: &[Value], list_meta: Value, now_ms: i64) -> Value {
    let mut defs: Vec<Value> = PRIORITY_CLASS_COLUMNS
        .iter()
        .map(|&(name, type_)| column(name, type_, false))
        .collect();
    defs[0]["format"] = json!("name");
    let rows = objects
        .iter()
        .map(|pc| {
            let cells = vec![
                pc["metadata"]["name"].clone(),
                json!(pc["value"].as_i64().unwrap_or(0)),
                json!(pc["globalDefault"] == true),
                json!(age(pc, now_ms)),
                json!(pc["preemptionPolicy"].as_str().unwrap_or("")),
            ];
            table_row(cells, pc)
        })
        .collect();
    table(list_meta, defs, rows)
}

/// The Table of `objects` (a list's items, or one object) and the list's metadata.
pub fn to_table(r: &Resource, objects: &[Value], list_meta: Value, now_ms: i64) -> Value {
    match (r.group, r.plural) {
        ("", "events") => return event_table(objects, list_meta, now_ms),
        ("scheduling.k8s.io", "priorityclasses") => {
            return priority_class_table(objects, list_meta, now_ms)
        }
        _ => {}
    }
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    defs.extend(columns(r).iter().map(|c| column(c, "string", false)));
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    defs.extend(wide_columns(r).iter().map(|c| column(c, "string", true)));
    let rows = objects.iter().map(|o| row(r, o, now_ms)).collect();
    table(list_meta, defs, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;

    #[test]
    fn events_print_as_upstream() {
        let r = resources::find("", "v1", "events").unwrap();
        let e = json!({"metadata": {"name": "p.1"}, "type": "Warning", "reason": "FailedScheduling",
            "message": "0/3 nodes are available", "involvedObject": {"kind": "Pod", "name": "p"},
            "source": {"component": "default-scheduler"}, "count": 2,
            "firstTimestamp": "2026-11-27T00:00:00Z", "lastTimestamp": "2026-11-27T00:01:00Z"});
        let now = time::parse_rfc3339("2026-11-27T00:01:30Z").unwrap();
        let t = to_table(r, &[e], json!({}), now);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["priority"] == 0)
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "30s");
        assert_eq!(cells[3], "pod/p");
        assert_eq!(cells[7], "90s");
        assert_eq!(cells[9], "p.1");
        assert_eq!(
            (&t["columnDefinitions"][8]["type"], &cells[8]),
            (&json!("integer"), &json!(2))
        );
    }

    #[test]
    fn priority_classes_print_as_upstream() {
        let r = resources::find("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let pc = json!({"metadata": {"name": "high", "creationTimestamp": "2026-11-27T00:00:00Z"},
            "value": 1000, "globalDefault": true, "preemptionPolicy": "Never"});
        let now = time::parse_rfc3339("2026-11-27T00:00:42Z").unwrap();
        let t = to_table(r, &[pc], json!({}), now);
        let defs = t["columnDefinitions"].as_array().unwrap();
        let shown: Vec<(&str, &str)> = defs
            .iter()
            .filter(|d| d["priority"] == 0)
            .map(|d| (d["name"].as_str().unwrap(), d["type"].as_str().unwrap()))
            .collect();
        assert_eq!(shown, PRIORITY_CLASS_COLUMNS);
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["high", 1000, true, "42s", "Never"])
        );
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "high");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(300), "5m");
        assert_eq!(human_age(310), "5m10s");
        assert_eq!(human_age(3600), "60m");
        assert_eq!(human_age(3 * 3600 + 60), "3h1m");
        assert_eq!(human_age(10 * 3600), "10h");
        assert_eq!(human_age(2 * 86_400 + 4 * 3600), "2d4h");
        assert_eq!(human_age(100 * 86_400), "100d");
        assert_eq!(human_age(-3), "0s");
    }

    #[test]
    fn pods_print_ready_status_restarts_and_age() {
        let pods = resources::find("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-26T23:07:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 2, "state": {"running": {}}},
                {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let t = to_table(
            pods,
            &[pod],
            json!({"resourceVersion": "5"}),
            1_795_734_427_000,
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "p",
                "1/2",
                "CrashLoopBackOff",
                3,
                "7s",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
