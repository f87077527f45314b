//! rkube: a Kubernetes-style cluster in Rust, built as a formally tested reference
//! implementation. The same component code runs on real tokio (the `rkube` binary) and under
//! madsim's deterministic simulation (`sim-tests/`).
//!
//! Modules are written as if they were crates, with one-way dependencies: `platform` (the
//! only place that names the runtime, clocks, disk, network and OS randomness) depends on
//! nothing of ours; `store` (the etcd-compatible Raft store) depends on `platform`; the
//! controllers' pure cores (`controller`) depend only on `api`.

pub mod api;
pub mod apiserver;
pub mod client;
pub mod controller;
pub mod platform;
pub mod scheduler;
pub mod store;
