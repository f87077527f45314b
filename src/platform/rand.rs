//! Randomness. Every random draw in rkube comes from a [`SharedRng`] owned by a node: seeded
//! in the simulation (so a seed replays a run), from OS entropy in the real build.

use std::sync::{Arc, Mutex};

use rand::{Rng, RngCore, SeedableRng};

/// The generator type; small and fast, not for secrets.
pub type NodeRng = rand::rngs::SmallRng;

/// A node's random source, shared by its tasks.
#[derive(Clone)]
pub struct SharedRng {
    inner: Arc<Mutex<NodeRng>>,
}

impl SharedRng {
    /// Deterministic from `seed`.
    pub fn seeded(seed: u64) -> SharedRng {
        SharedRng {
            inner: Arc::new(Mutex::new(NodeRng::seed_from_u64(seed))),
        }
    }

    /// From OS entropy in the real build; from madsim's seeded generator under simulation.
    pub fn from_entropy() -> SharedRng {
        SharedRng::seeded(entropy_seed())
    }

    /// A uniformly random u64.
    pub fn next_u64(&self) -> u64 {
        self.inner.lock().expect("rng lock").next_u64()
    }

    /// A uniform draw from `low..high` (`high > low`).
    pub fn range_u64(&self, low: u64, high: u64) -> u64 {
        assert!(high > low, "empty range {low}..{high}");
        self.inner.lock().expect("rng lock").random_range(low..high)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&self, p: f64) -> bool {
        self.inner
            .lock()
            .expect("rng lock")
            .random_bool(p.clamp(0.0, 1.0))
    }

    /// A child generator seeded from this one, for a sub-component that wants its own stream.
    pub fn fork(&self) -> SharedRng {
        SharedRng::seeded(self.next_u64())
    }
}

#[cfg(not(madsim))]
fn entropy_seed() -> u64 {
    let mut seed = [0u8; 8];
    // A failing OS entropy source is unrecoverable for a process that needs ids.
    getrandom_seed(&mut seed);
    u64::from_le_bytes(seed)
}

#[cfg(not(madsim))]
fn getrandom_seed(buf: &mut [u8; 8]) {
    let mut rng = NodeRng::from_os_rng();
    rng.fill_bytes(buf);
}

#[cfg(madsim)]
fn entropy_seed() -> u64 {
    madsim::rand::random::<u64>()
}
