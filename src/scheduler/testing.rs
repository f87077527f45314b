//! Helpers the scheduler's unit tests share: a seeded tie-break source and one plugin's
//! filter answers and scores over every node of a cache.

use std::sync::Arc;

use super::plugins::{CycleState, Plugin};
use super::snapshot::{Cache, NodeInfo, PodInfo};
use serde_json::json;

use crate::api::{Node, Pod};

/// A xorshift generator: tie-breaks that a seed replays.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// `plugin`'s filter answer for every node, in name order: `None` passes, else the reasons
/// and whether the rejection is unresolvable.
pub fn filter_all(
    plugin: &dyn Plugin,
    incoming: &Arc<Pod>,
    c: &Cache,
) -> Vec<Option<(String, bool)>> {
    let info = PodInfo::new(incoming.clone());
    let mut state = CycleState::default();
    plugin.pre_filter(&info, c.snapshot(), &mut state).unwrap();
    c.snapshot()
        .schedulable_nodes()
        .map(|n| {
            let r = plugin.filter(&state, &info, n).err()?;
            Some((r.reasons.join(", "), r.unresolvable))
        })
        .collect()
}

/// `plugin`'s raw and normalized scores over every node, in name order (its PreScore must
/// not skip).
pub fn scores(plugin: &dyn Plugin, incoming: &Arc<Pod>, c: &Cache) -> (Vec<i64>, Vec<i64>) {
    let info = PodInfo::new(incoming.clone());
    let snap = c.snapshot();
    let nodes: Vec<&NodeInfo> = snap.schedulable_nodes().collect();
    let mut state = CycleState::default();
    assert!(plugin.pre_score(&info, snap, &nodes, &mut state));
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| plugin.score(&state, &info, n))
        .collect();
    let mut normalized = raw.clone();
    plugin.normalize(&mut normalized);
    (raw, normalized)
}

/// A node with `cpu` cores, `mem_gi` GiB and room for `pods` pods, label `zone=z<zone>`, and
/// with `taint` the `dedicated=db:NoSchedule` taint.
pub fn node(name: &str, cpu: u32, mem_gi: u32, pods: u32, taint: bool, zone: u8) -> Arc<Node> {
    let taints = if taint {
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"zone": format!("z{zone}")}},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": cpu.to_string(), "memory": format!("{mem_gi}Gi"),
                "pods": pods.to_string()}}}),
        )
        .unwrap(),
    )
}
