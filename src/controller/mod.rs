//! The controller-manager's controllers. Each one is split the way `DESIGN.md` layers every
//! component: a pure core here (`reconcile(observed) -> plan`: no I/O, no clock, no
//! randomness of its own; time arrives as an input) and a driver that owns the informers, the
//! work queue and the API calls and carries a plan out.
//!
//! The cores depend only on `api` (the typed objects), so property tests and model checks run
//! them directly, without a cluster.
//!
//! - [`replicaset`]: keeps `spec.replicas` pods of a ReplicaSet (adoption, release, slow-start
//!   creates, ranked deletes, expectations, status).

pub mod replicaset;
