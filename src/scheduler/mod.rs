//! The scheduler: picks a node for each pod that has none (filter → score → bind).
//!
//! The decision is a pure core — [`framework::Framework::schedule`] over a
//! [`snapshot::Snapshot`] — so property tests and the simulation exercise it directly; the
//! driver that feeds it from informers and binds through the API server owns the I/O.
//! [`snapshot::Cache`] counts a pod on its node from the moment it is chosen (an assumed
//! pod), so consecutive cycles never hand the same room out twice.
//!
//! [`plugins`] holds the per-node plugins; [`spread`] (PodTopologySpread) and [`affinity`]
//! (InterPodAffinity) look at the pods already placed across the cluster.

pub mod affinity;
pub mod framework;
pub mod plugins;
pub mod snapshot;
pub mod spread;
