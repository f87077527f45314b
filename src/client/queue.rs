//! The controllers' work queue: a de-duplicating queue of keys with upstream's guarantees —
//! an item is handed to at most one worker at a time, an item added while it is being
//! processed is processed again afterwards, and failures are retried with per-item
//! exponential back-off capped by an overall token bucket (client-go's default controller
//! rate limiter).
//!
//! [`QueueCore`] is the pure core (time is an argument); [`WorkQueue`] wraps it for async
//! workers on a node's clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::platform::time::Clock;

/// First retry delay of a failing item (client-go: 5 ms).
pub const BACKOFF_BASE_MS: u64 = 5;
/// Longest retry delay of a failing item (client-go: 1000 s).
pub const BACKOFF_MAX_MS: u64 = 1_000_000;
/// Overall retry rate across items (client-go: 10 per second, bursts of 100).
pub const BUCKET_PER_SECOND: u64 = 10;
pub const BUCKET_BURST: u64 = 100;
/// Most distinct items queued, waiting or processing at once; beyond it adds are refused.
pub const MAX_QUEUE_ITEMS: usize = 1_000_000;

/// The queue's state; every method takes the current time where it matters.
#[derive(Debug)]
pub struct QueueCore<T: Ord + Clone> {
    queue: VecDeque<T>,
    /// Items that need processing (queued, or re-added while processing).
    dirty: BTreeSet<T>,
    processing: BTreeSet<T>,
    /// Items added with a delay: (due time, sequence) → item.
    waiting: BTreeMap<(u64, u64), T>,
    waiting_seq: u64,
    failures: BTreeMap<T, u32>,
    /// Token bucket: thousandths of tokens available as of `bucket_at_ms`; negative when
    /// retries already reserved tokens that have not accrued yet (as Go's rate.Limiter).
    bucket_milli_tokens: i64,
    bucket_at_ms: u64,
    shut: bool,
}

impl<T: Ord + Clone> Default for QueueCore<T> {
    fn default() -> Self {
        QueueCore {
            queue: VecDeque::new(),
            dirty: BTreeSet::new(),
            processing: BTreeSet::new(),
            waiting: BTreeMap::new(),
            waiting_seq: 0,
            failures: BTreeMap::new(),
            bucket_milli_tokens: BUCKET_BURST as i64 * 1000,
            bucket_at_ms: 0,
            shut: false,
        }
    }
}

impl<T: Ord + Clone> QueueCore<T> {
    /// Marks `item` for processing; false if the queue is full or shut down.
    pub fn add(&mut self, item: T) -> bool {
        if self.shut {
            return false;
        }
        if self.dirty.contains(&item) {
            return true;
        }
        if self.dirty.len() + self.processing.len() >= MAX_QUEUE_ITEMS {
            return false;
        }
        self.dirty.insert(item.clone());
        if !self.processing.contains(&item) {
            self.queue.push_back(item);
        }
        true
    }

    /// Adds `item` once `now_ms + delay_ms` has come.
    pub fn add_after(&mut self, item: T, delay_ms: u64, now_ms: u64) -> bool {
        if delay_ms == 0 {
            return self.add(item);
        }
        if self.shut || self.waiting.len() >= MAX_QUEUE_ITEMS {
            return false;
        }
        self.waiting_seq += 1;
        self.waiting
            .insert((now_ms + delay_ms, self.waiting_seq), item);
        true
    }

    /// Adds `item` after its back-off: the larger of its exponential delay and the bucket's.
    pub fn add_rate_limited(&mut self, item: T, now_ms: u64) -> bool {
        let delay = self.when(&item, now_ms);
        self.add_after(item, delay, now_ms)
    }

    /// The delay before `item`'s next retry (and counts the failure).
    pub fn when(&mut self, item: &T, now_ms: u64) -> u64 {
        let n = self.failures.entry(item.clone()).or_insert(0);
        let exp = BACKOFF_BASE_MS.saturating_mul(1u64 << (*n).min(40));
        *n = n.saturating_add(1);
        exp.min(BACKOFF_MAX_MS).max(self.bucket_delay(now_ms))
    }

    /// Reserves one token from the bucket; how long until it has accrued.
    fn bucket_delay(&mut self, now_ms: u64) -> u64 {
        // BUCKET_PER_SECOND tokens per second = BUCKET_PER_SECOND thousandths per ms.
        let rate = BUCKET_PER_SECOND as i64;
        let elapsed = now_ms.saturating_sub(self.bucket_at_ms) as i64;
        let full = BUCKET_BURST as i64 * 1000;
        self.bucket_milli_tokens = (self.bucket_milli_tokens + elapsed * rate).min(full);
        self.bucket_at_ms = self.bucket_at_ms.max(now_ms);
        self.bucket_milli_tokens -= 1000;
        if self.bucket_milli_tokens >= 0 {
            return 0;
        }
        ((-self.bucket_milli_tokens) as u64).div_ceil(rate as u64)
    }

    /// Forgets `item`'s failures (it succeeded).
    pub fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    /// How often `item` has been retried since it last succeeded.
    pub fn requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }

    /// Moves delayed items that are due into the queue; returns when the next one is due.
    pub fn promote(&mut self, now_ms: u64) -> Option<u64> {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now_ms {
                return Some(entry.key().0);
            }
            let item = entry.remove();
            self.add(item);
        }
        None
    }

    /// The next item to process, if any is ready.
    pub fn get(&mut self) -> Option<T> {
        let item = self.queue.pop_front()?;
        assert!(self.dirty.remove(&item), "a queued item is dirty");
        assert!(
            self.processing.insert(item.clone()),
            "a queued item is not being processed"
        );
        Some(item)
    }

    /// A worker finished `item`; if it was added meanwhile, it is queued again.
    pub fn done(&mut self, item: &T) {
        assert!(self.processing.remove(item), "done without get");
        if self.dirty.contains(item) {
            self.queue.push_back(item.clone());
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Refuses new items; [`WorkQueue::get`] hands out what is queued, then `None`.
    pub fn shut_down(&mut self) {
        self.shut = true;
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut
    }
}

/// A work queue shared by a controller's informer handlers and its workers.
pub struct WorkQueue<T: Ord + Clone> {
    core: Mutex<QueueCore<T>>,
    ready: Notify,
    clock: Clock,
}

impl<T: Ord + Clone> WorkQueue<T> {
    pub fn new(clock: Clock) -> WorkQueue<T> {
        WorkQueue {
            core: Mutex::new(QueueCore::default()),
            ready: Notify::new(),
            clock,
        }
    }

    fn core(&self) -> MutexGuard<'_, QueueCore<T>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&self, item: T) {
        if !self.core().add(item) {
            tracing::warn!("work queue full or shut down; item dropped");
        }
        self.ready.notify_waiters();
    }

    pub fn add_after(&self, item: T, delay: Duration) {
        let now = self.clock.now_ms();
        self.core().add_after(item, delay.as_millis() as u64, now);
        self.ready.notify_waiters();
    }

    pub fn add_rate_limited(&self, item: T) {
        let now = self.clock.now_ms();
        self.core().add_rate_limited(item, now);
        self.ready.notify_waiters();
    }

    pub fn forget(&self, item: &T) {
        self.core().forget(item);
    }

    pub fn requeues(&self, item: &T) -> u32 {
        self.core().requeues(item)
    }

    /// Waits for the next item; `None` once the queue is shut down and drained.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut core = self.core();
                if core.is_shut_down() {
                    // Queued items still drain; delayed ones are dropped (client-go's way).
                    return core.get();
                }
                let next_due = core.promote(self.clock.now_ms());
                if let Some(item) = core.get() {
                    return Some(item);
                }
                next_due
            };
            match next_due {
                Some(due) => {
                    let wait = Duration::from_millis(due.saturating_sub(self.clock.now_ms()));
                    let _ = self.clock.timeout(wait, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Marks `item` finished (see [`QueueCore::done`]).
    pub fn done(&self, item: &T) {
        self.core().done(item);
        self.ready.notify_waiters();
    }

    pub fn shut_down(&self) {
        self.core().shut_down();
        self.ready.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.core().len()
    }

    pub fn is_empty(&self) -> bool {
        self.core().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_item_is_processed_by_one_worker_and_again_if_re_added() {
        let mut q = QueueCore::default();
        assert!(q.add("a"));
        assert!(q.add("a"), "duplicates collapse");
        assert!(q.add("b"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.get(), Some("a"));
        q.add("a");
        assert_eq!(
            q.get(),
            Some("b"),
            "a is being processed: not handed out twice"
        );
        assert_eq!(q.get(), None);
        q.done(&"a");
        assert_eq!(
            q.get(),
            Some("a"),
            "re-added while processing: processed again"
        );
        q.done(&"a");
        q.done(&"b");
        assert!(q.is_empty());
    }

    #[test]
    fn failures_back_off_exponentially_and_reset_on_forget() {
        let mut q = QueueCore::default();
        let delays: Vec<u64> = (0..5).map(|_| q.when(&"a", 0)).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80]);
        assert_eq!(q.requeues(&"a"), 5);
        q.forget(&"a");
        assert_eq!(q.when(&"a", 0), 5);
        for _ in 0..40 {
            q.when(&"b", 0);
        }
        assert_eq!(q.when(&"b", 0), BACKOFF_MAX_MS);
    }

    #[test]
    fn the_bucket_limits_the_overall_retry_rate() {
        let mut q = QueueCore::default();
        // The burst is free (beyond each item's own 5 ms).
        for i in 0..BUCKET_BURST {
            assert_eq!(q.when(&i, 0), BACKOFF_BASE_MS);
        }
        // Then retries are spaced at 10 per second.
        assert_eq!(q.when(&1000, 0), 100);
        assert_eq!(q.when(&1001, 0), 200);
        assert_eq!(q.when(&1002, 1000), BACKOFF_BASE_MS, "the bucket refilled");
    }

    #[test]
    fn delayed_items_arrive_when_due() {
        let mut q = QueueCore::default();
        q.add_after("late", 100, 0);
        q.add_after("early", 10, 0);
        assert_eq!(q.promote(5), Some(10));
        assert_eq!(q.get(), None);
        assert_eq!(q.promote(50), Some(100));
        assert_eq!(q.get(), Some("early"));
        assert_eq!(q.promote(100), None);
        assert_eq!(q.get(), Some("late"));
        q.shut_down();
        assert!(!q.add("x"));
    }

    #[test]
    fn a_shut_down_queue_drains_then_ends() {
        crate::platform::block_on(async {
            let q = WorkQueue::new(Clock::new());
            q.add("a");
            q.add("b");
            q.add_after("later", Duration::from_secs(60));
            q.shut_down();
            q.add("refused");
            assert_eq!(q.get().await, Some("a"));
            assert_eq!(q.get().await, Some("b"));
            assert_eq!(
                q.get().await,
                None,
                "drained; delayed and late items are dropped"
            );
        });
    }

    proptest! {
        /// Whatever the interleaving of adds, gets and dones, an item is never handed out
        /// while it is being processed, and every added item is eventually handed out.
        #[test]
        fn never_concurrent_never_lost(ops in proptest::collection::vec((0u8..3, 0u8..4), 1..200)) {
            let mut q = QueueCore::default();
            let mut held: Vec<u8> = Vec::new();
            let mut pending: BTreeSet<u8> = BTreeSet::new();
            for (op, item) in ops {
                match op {
                    0 => {
                        q.add(item);
                        pending.insert(item);
                    }
                    1 => {
                        if let Some(i) = q.get() {
                            prop_assert!(!held.contains(&i), "{} handed out twice", i);
                            held.push(i);
                            pending.remove(&i);
                        }
                    }
                    _ => {
                        if !held.is_empty() {
                            let i = held.remove(0);
                            q.done(&i);
                        }
                    }
                }
            }
            for i in held.drain(..) {
                q.done(&i);
            }
            let mut seen = BTreeSet::new();
            while let Some(i) = q.get() {
                seen.insert(i);
                q.done(&i);
            }
            prop_assert!(pending.is_subset(&seen), "lost: {:?} vs {:?}", pending, seen);
        }
    }
}
