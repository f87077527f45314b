//! The platform seam: the one module allowed to name the async runtime (tokio, or madsim's
//! simulation of it), clocks, files, sockets, threads and OS randomness.
//!
//! Everything above this module takes time, randomness, disk and network as values handed in
//! through [`Platform`], so the same component code runs on real tokio in the `rkube` binary
//! and on simulated time under `--cfg madsim`, where a seed replays a run exactly.

pub mod buggify;
pub mod disk;
pub mod net;
pub mod rand;
pub mod signal;
pub mod task;
pub mod time;
pub mod tls;

use std::sync::Arc;

/// What one node (a process in the real build, a madsim node in the simulation) is given by
/// its host: its clock, its disk, its random source and its fault points.
#[derive(Clone)]
pub struct Platform {
    /// Human-readable node name, used in logs.
    pub node_name: String,
    pub clock: time::Clock,
    pub disk: Arc<dyn disk::Disk>,
    pub rng: rand::SharedRng,
    pub buggify: Arc<buggify::Buggify>,
}

impl Platform {
    /// The real build: wall and monotonic clocks of the OS, files under `data_dir`, OS
    /// entropy, fault points off.
    pub fn real(node_name: &str, data_dir: &std::path::Path) -> std::io::Result<Platform> {
        Ok(Platform {
            node_name: node_name.to_string(),
            clock: time::Clock::new(),
            disk: Arc::new(disk::RealDisk::new(data_dir)?),
            rng: rand::SharedRng::from_entropy(),
            buggify: Arc::new(buggify::Buggify::disabled()),
        })
    }

    /// The real build for a component that keeps no local files (the API server).
    pub fn real_diskless(node_name: &str) -> Platform {
        Platform {
            node_name: node_name.to_string(),
            clock: time::Clock::new(),
            disk: Arc::new(disk::NoDisk),
            rng: rand::SharedRng::from_entropy(),
            buggify: Arc::new(buggify::Buggify::disabled()),
        }
    }

    /// A node built from explicit parts (the simulator, and tests).
    pub fn with_parts(
        node_name: &str,
        clock: time::Clock,
        disk: Arc<dyn disk::Disk>,
        seed: u64,
        buggify: Arc<buggify::Buggify>,
    ) -> Platform {
        Platform {
            node_name: node_name.to_string(),
            clock,
            disk,
            rng: rand::SharedRng::seeded(seed),
            buggify,
        }
    }
}

/// Runs the binary's top-level future on a fresh runtime (multi-threaded tokio in the real
/// build; a madsim runtime in the simulation build, where the binary is not normally used).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    #[cfg(not(madsim))]
    {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("start the tokio runtime")
            .block_on(fut)
    }
    #[cfg(madsim)]
    {
        madsim::runtime::Runtime::new().block_on(fut)
    }
}

/// Installs the tracing subscriber for a binary: `RUST_LOG` filter, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
