//! BUGGIFY fault points, after FoundationDB: code names a site (`"wal.before_save"`), and the
//! site fires only if it was enabled for this run (drawn once per site, with probability
//! `site_enable_probability`) and then only on some hits (`fire_probability`). Runs thus differ
//! in *which* faults exist, not only in when they strike. Inert unless enabled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::rand::SharedRng;

/// Default chance that a site is live for a whole run.
pub const DEFAULT_SITE_ENABLE_PROBABILITY: f64 = 0.25;
/// Default chance that a live site fires on one hit. Sites sit on hot paths (every raft
/// Ready), so this is small: a live site fires every few seconds of a busy run.
pub const DEFAULT_FIRE_PROBABILITY: f64 = 0.001;

struct Live {
    rng: SharedRng,
    site_enable_probability: f64,
    fire_probability: f64,
    /// Per site: enabled for this run, and how often it fired.
    sites: BTreeMap<String, (bool, u64)>,
}

/// The fault points of one node (or one simulation).
pub struct Buggify {
    live: Option<Mutex<Live>>,
    /// When present, sites fire only while it is true (the simulation turns faults off for
    /// its liveness phase).
    gate: Option<Arc<AtomicBool>>,
}

impl Buggify {
    /// Never fires (the real build's default).
    pub fn disabled() -> Buggify {
        Buggify {
            live: None,
            gate: None,
        }
    }

    /// Fires only while `gate` is true.
    pub fn with_gate(mut self, gate: Arc<AtomicBool>) -> Buggify {
        self.gate = Some(gate);
        self
    }

    /// Fires per the two probabilities, drawing from `rng`.
    pub fn enabled(rng: SharedRng, site_enable_probability: f64, fire_probability: f64) -> Buggify {
        Buggify {
            live: Some(Mutex::new(Live {
                rng,
                site_enable_probability,
                fire_probability,
                sites: BTreeMap::new(),
            })),
            gate: None,
        }
    }

    /// Whether fault site `site` fires on this hit.
    pub fn fire(&self, site: &str) -> bool {
        let Some(live) = &self.live else {
            return false;
        };
        if let Some(gate) = &self.gate {
            if !gate.load(Ordering::Relaxed) {
                return false;
            }
        }
        let mut live = live.lock().expect("buggify lock");
        let enable_p = live.site_enable_probability;
        if !live.sites.contains_key(site) {
            let on = live.rng.chance(enable_p);
            live.sites.insert(site.to_string(), (on, 0));
        }
        let fire_p = live.fire_probability;
        let on = live.sites[site].0;
        if on && live.rng.chance(fire_p) {
            if let Some(entry) = live.sites.get_mut(site) {
                entry.1 += 1;
            }
            return true;
        }
        false
    }

    /// Sites seen so far: (name, enabled for this run, times fired), in name order.
    pub fn report(&self) -> Vec<(String, bool, u64)> {
        match &self.live {
            None => Vec::new(),
            Some(live) => live
                .lock()
                .expect("buggify lock")
                .sites
                .iter()
                .map(|(k, (on, n))| (k.clone(), *on, *n))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_never_fires() {
        let b = Buggify::disabled();
        assert!((0..1000).all(|_| !b.fire("x")));
    }

    #[test]
    fn enabled_site_fires_and_same_seed_same_pattern() {
        let run = |seed| {
            let b = Buggify::enabled(SharedRng::seeded(seed), 1.0, 0.5);
            (0..64).map(|_| b.fire("site")).collect::<Vec<_>>()
        };
        let a = run(7);
        assert!(a.iter().any(|f| *f) && a.iter().any(|f| !*f));
        assert_eq!(a, run(7));
    }

    #[test]
    fn a_closed_gate_stops_every_site() {
        let gate = Arc::new(AtomicBool::new(false));
        let b = Buggify::enabled(SharedRng::seeded(3), 1.0, 1.0).with_gate(gate.clone());
        assert!(!b.fire("s"));
        gate.store(true, Ordering::Relaxed);
        assert!(b.fire("s"));
    }

    #[test]
    fn site_disabled_for_run_never_fires() {
        let b = Buggify::enabled(SharedRng::seeded(1), 0.0, 1.0);
        assert!((0..100).all(|_| !b.fire("s")));
        assert_eq!(b.report(), vec![("s".to_string(), false, 0)]);
    }
}
