//! Helpers the scheduler's unit tests share: a seeded tie-break source and one plugin's
//! filter answers and scores over every node of a cache.

use std::sync::Arc;

use super::plugins::{CycleState, Plugin};
use super::snapshot::{Cache, NodeInfo, PodInfo};
use crate::api::Pod;

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
