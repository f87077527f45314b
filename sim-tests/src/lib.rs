//! rkube's deterministic simulation harness.
//!
//! A whole store cluster (and, later, the rest of rkube) runs in one process on madsim's
//! simulated time. Every run is a function of its seed: the seed picks the run's parameters
//! (swarm testing), the fault schedule, the workload and every random draw inside the
//! components. Two phases per run: faults on (safety is checked), then faults off (the
//! cluster must make progress and every client must finish within a bounded time).
//!
//! Only meaningful with `--cfg madsim` (`cargo sim …`); the normal build compiles the
//! parameter and report code so it stays linted.

pub mod params;
pub mod report;

#[cfg(madsim)]
pub mod checker;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod timeline;
#[cfg(madsim)]
pub mod workload;
