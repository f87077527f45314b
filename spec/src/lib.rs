//! rkube's executable specifications.
//!
//! - [`kv`]: the sequential key-value + revision + watch model. The simulation replays a
//!   run's committed history through it and checks every client response against it.
//! - [`replication`]: an abstract model of the store's replication (Raft's election and log
//!   rules, with crashes, message loss and reordering) that stateright checks exhaustively
//!   for the safety properties in `INVARIANTS.md`, with small bounds.

pub mod kv;
pub mod replication;
