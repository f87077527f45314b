//! The scheduler: picks a node for each pod that has none (filter → score → bind).
//!
//! The decision is a pure core — [`framework::Framework::schedule`] over a
//! [`snapshot::Snapshot`] — so property tests and the simulation exercise it directly;
//! [`driver`] feeds it from informers and binds through the API server. [`snapshot::Cache`]
//! counts a pod on its node from the moment it is chosen (an assumed pod), so consecutive
//! cycles never hand the same room out twice; [`queue`] orders the pending pods and parks
//! the unschedulable ones until the cluster changes.
//!
//! [`plugins`] holds the per-node plugins; [`spread`] (PodTopologySpread) and [`affinity`]
//! (InterPodAffinity) look at the pods already placed across the cluster. When no node fits,
//! [`preemption`] looks for lower-priority pods whose eviction would make room.

pub mod affinity;
pub mod driver;
pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod snapshot;
pub mod spread;
#[cfg(test)]
mod testing;

pub use driver::{run, SchedulerConfig};
