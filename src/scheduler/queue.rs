//! The scheduling queue (upstream `PriorityQueue`): pods waiting for a node, in three parts.
//!
//! - **active**: ready to be scheduled, highest priority first, then oldest first;
//! - **backoff**: failed recently, waiting out an exponential back-off (1 s doubling to 10 s)
//!   before they are tried again;
//! - **unschedulable**: no node fitted; they wait for a cluster event that could change that
//!   (a node added or changed, a pod deleted, …), or at most five minutes.
//!
//! A pod whose attempt failed while such an event happened goes to backoff rather than
//! unschedulable — the event may already have made room, and waiting for another could
//! strand it (upstream's "move request cycle"). Pure: time is an argument.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// First and longest back-off after a failed attempt (upstream `podInitialBackoffSeconds`,
/// `podMaxBackoffSeconds`).
pub const POD_INITIAL_BACKOFF_MS: i64 = 1_000;
pub const POD_MAX_BACKOFF_MS: i64 = 10_000;
/// Longest a pod waits in unschedulable without an event (upstream
/// `podMaxInUnschedulablePodsDuration`).
pub const MAX_UNSCHEDULABLE_WAIT_MS: i64 = 5 * 60 * 1000;
/// Most pods the queue holds; beyond it new pods are refused (the driver logs it; the pod is
/// queued when it next changes).
pub const MAX_QUEUED_PODS: usize = 1_000_000;

/// Where a pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Active,
    Backoff {
        until_ms: i64,
    },
    Unschedulable {
        since_ms: i64,
    },
    /// Popped and being scheduled.
    InFlight {
        cycle: u64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    priority: i32,
    attempts: u32,
    /// When the pod entered the queue or its last attempt failed: orders pods of equal
    /// priority (upstream resets the timestamp on each requeue, so a pod that keeps failing
    /// does not stay ahead of newer ones) and starts its back-off.
    queued_ms: i64,
    part: Part,
}

type ActiveKey = (Reverse<i32>, i64, String);

/// The queue's state.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    entries: BTreeMap<String, Entry>,
    active: BTreeSet<ActiveKey>,
    /// Scheduling attempts started so far.
    cycle: u64,
    /// The cycle count when the last move-worthy cluster event happened.
    move_request_cycle: u64,
}

impl SchedulingQueue {
    fn active_key(key: &str, e: &Entry) -> ActiveKey {
        (Reverse(e.priority), e.queued_ms, key.to_string())
    }

    /// A new pending pod (or a changed one: its priority is refreshed). A pod already in
    /// flight stays there.
    pub fn add(&mut self, key: &str, priority: i32, now_ms: i64) -> bool {
        if let Some(e) = self.entries.get_mut(key) {
            let active = e.part == Part::Active;
            if active {
                self.active.remove(&Self::active_key(key, e));
            }
            e.priority = priority;
            if active {
                self.active.insert(Self::active_key(key, e));
            }
            return true;
        }
        if self.entries.len() >= MAX_QUEUED_PODS {
            return false;
        }
        let e = Entry {
            priority,
            attempts: 0,
            queued_ms: now_ms,
            part: Part::Active,
        };
        self.active.insert(Self::active_key(key, &e));
        self.entries.insert(key.to_string(), e);
        true
    }

    /// The pending pod itself changed (not only its status): if it is parked, the change may
    /// make it schedulable, so it moves to back-off or active (upstream `Update`).
    pub fn wake(&mut self, key: &str, now_ms: i64) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if matches!(e.part, Part::Unschedulable { .. }) {
            e.part = Part::Backoff {
                until_ms: e.queued_ms + backoff_ms(e.attempts),
            };
            self.flush(now_ms);
        }
    }

    /// The pod is gone or bound: forget it.
    pub fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.active.remove(&Self::active_key(key, &e));
        }
    }

    /// The next pod to schedule, if any is active.
    pub fn pop(&mut self) -> Option<String> {
        let first = self.active.pop_first()?;
        let key = first.2;
        self.cycle += 1;
        let e = self
            .entries
            .get_mut(&key)
            .expect("active pods have entries");
        e.part = Part::InFlight { cycle: self.cycle };
        e.attempts += 1;
        Some(key)
    }

    /// The attempt on `key` found no node: park it until an event (or back off if one
    /// happened during the attempt).
    pub fn unschedulable(&mut self, key: &str, now_ms: i64) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let Part::InFlight { cycle } = e.part else {
            return;
        };
        e.queued_ms = now_ms;
        e.part = if self.move_request_cycle >= cycle {
            Part::Backoff {
                until_ms: now_ms + backoff_ms(e.attempts),
            }
        } else {
            Part::Unschedulable { since_ms: now_ms }
        };
    }

    /// The attempt failed for another reason (binding refused, API error): back off.
    pub fn retry(&mut self, key: &str, now_ms: i64) {
        if let Some(e) = self.entries.get_mut(key) {
            if matches!(e.part, Part::InFlight { .. }) {
                e.queued_ms = now_ms;
                e.part = Part::Backoff {
                    until_ms: now_ms + backoff_ms(e.attempts),
                };
            }
        }
    }

    /// Something changed that could let unschedulable pods fit: they move to backoff (if
    /// still backing off) or active.
    pub fn move_all(&mut self, now_ms: i64) {
        self.move_request_cycle = self.cycle;
        let parked: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.part, Part::Unschedulable { .. }))
            .map(|(k, _)| k.clone())
            .collect();
        for key in parked {
            let e = self.entries.get_mut(&key).expect("listed");
            // Still within its back-off from the last failure: wait that out first.
            e.part = Part::Backoff {
                until_ms: e.queued_ms + backoff_ms(e.attempts),
            };
        }
        self.flush(now_ms);
    }

    /// Moves pods whose back-off is over, and pods parked too long, to active. Returns when
    /// the next back-off ends, if any pod is backing off.
    pub fn flush(&mut self, now_ms: i64) -> Option<i64> {
        let mut next = None::<i64>;
        let mut ready = Vec::new();
        for (k, e) in &self.entries {
            match e.part {
                Part::Backoff { until_ms } if until_ms <= now_ms => ready.push(k.clone()),
                Part::Backoff { until_ms } => {
                    next = Some(next.map_or(until_ms, |n| n.min(until_ms)))
                }
                Part::Unschedulable { since_ms }
                    if now_ms - since_ms >= MAX_UNSCHEDULABLE_WAIT_MS =>
                {
                    ready.push(k.clone())
                }
                _ => {}
            }
        }
        for k in ready {
            let e = self.entries.get_mut(&k).expect("listed");
            e.part = Part::Active;
            let ak = Self::active_key(&k, e);
            self.active.insert(ak);
        }
        next
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pods parked as unschedulable.
    pub fn unschedulable_len(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e.part, Part::Unschedulable { .. }))
            .count()
    }
}

/// Back-off after `attempts` failed attempts: 1 s, 2 s, 4 s, … up to 10 s.
pub fn backoff_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (POD_INITIAL_BACKOFF_MS << doublings).min(POD_MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn priority_then_age_order_the_active_pods() {
        let mut q = SchedulingQueue::default();
        q.add("a", 0, 10);
        q.add("b", 100, 20);
        q.add("c", 0, 5);
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop().as_deref(), Some("c"));
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_then_back_off() {
        let mut q = SchedulingQueue::default();
        q.add("p", 0, 0);
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.unschedulable("p", 100);
        assert_eq!(q.unschedulable_len(), 1);
        assert_eq!(q.flush(60_000), None, "no event, no move");
        assert_eq!(q.pop(), None);
        // An event after the back-off has passed: straight to active.
        q.move_all(2_000);
        assert_eq!(q.pop().as_deref(), Some("p"));
        // Second failure: 2 s back-off; an event at once leaves it backing off.
        q.unschedulable("p", 3_000);
        q.move_all(3_100);
        assert_eq!(q.pop(), None);
        assert_eq!(q.flush(4_999), Some(5_000));
        assert_eq!(q.flush(5_000), None);
        assert_eq!(q.pop().as_deref(), Some("p"));
        // Parked too long without any event: tried again anyway.
        q.unschedulable("p", 10_000);
        q.flush(10_000 + MAX_UNSCHEDULABLE_WAIT_MS);
        assert_eq!(q.pop().as_deref(), Some("p"));
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let mut q = SchedulingQueue::default();
        q.add("p", 0, 0);
        q.pop();
        q.move_all(50); // e.g. a node was added while "p" was being scheduled
        q.unschedulable("p", 100);
        assert_eq!(q.unschedulable_len(), 0);
        q.flush(100 + backoff_ms(1));
        assert_eq!(q.pop().as_deref(), Some("p"));
    }

    #[test]
    fn a_changed_parked_pod_is_tried_again() {
        let mut q = SchedulingQueue::default();
        q.add("p", 0, 0);
        q.pop();
        q.unschedulable("p", 1_000);
        q.wake("p", 1_500); // still within its 1 s back-off
        assert_eq!(q.pop(), None);
        q.flush(2_000);
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.unschedulable("p", 3_000);
        q.wake("p", 10_000); // back-off long over: straight to active
        assert_eq!(q.pop().as_deref(), Some("p"));
    }

    #[test]
    fn a_requeued_pod_goes_behind_pods_queued_since() {
        let mut q = SchedulingQueue::default();
        q.add("a", 0, 0);
        q.add("b", 0, 10);
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.retry("a", 100);
        q.flush(5_000);
        assert_eq!(
            q.pop().as_deref(),
            Some("b"),
            "b waited since 10, a since 100"
        );
        assert_eq!(q.pop().as_deref(), Some("a"));
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(4), 8_000);
        assert_eq!(backoff_ms(5), 10_000);
        assert_eq!(backoff_ms(u32::MAX), 10_000);
    }

    proptest! {
        /// Whatever happens, every pod is in exactly one place, the active set holds exactly
        /// the active entries, and no pod is lost: each is eventually popped again after
        /// events and enough time.
        #[test]
        fn pods_are_never_lost(ops in proptest::collection::vec((0u8..6, 0u8..8, 0i32..3), 1..200)) {
            let mut q = SchedulingQueue::default();
            let mut now = 0i64;
            let mut in_flight = BTreeSet::new();
            for (op, pod, prio) in ops {
                now += 250;
                let key = format!("p{pod}");
                match op {
                    0 => { q.add(&key, prio, now); }
                    1 => if let Some(k) = q.pop() { prop_assert!(in_flight.insert(k)); },
                    2 => if in_flight.remove(&key) { q.unschedulable(&key, now); },
                    3 => if in_flight.remove(&key) { q.retry(&key, now); },
                    4 => q.move_all(now),
                    _ => { in_flight.remove(&key); q.remove(&key); }
                }
                let active = q.entries.values().filter(|e| e.part == Part::Active).count();
                prop_assert_eq!(active, q.active.len());
            }
            let waiting: BTreeSet<String> = q.entries.keys().filter(|k| !in_flight.contains(*k)).cloned().collect();
            q.move_all(now);
            q.flush(now + MAX_UNSCHEDULABLE_WAIT_MS + POD_MAX_BACKOFF_MS);
            let mut popped = BTreeSet::new();
            while let Some(k) = q.pop() {
                popped.insert(k);
            }
            prop_assert_eq!(popped, waiting);
        }
    }
}
