//! Tasks and shutdown signals. Components spawn through here so that the simulation's
//! scheduler (madsim) owns every task of a simulated node, and a node's tasks die with it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use tokio::task::JoinHandle;

/// Spawns a task on the current runtime (the current simulated node under madsim).
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fut)
}

/// Lets other tasks run; used by loops that could otherwise hog a simulated node.
pub async fn yield_now() {
    tokio::task::yield_now().await
}

/// The state shared by a trigger and its signals. Built on `Notify` rather than
/// `tokio::sync::watch`: watch spreads its waiters over shards chosen by tokio's thread RNG,
/// seeded from a process-global counter, so the order in which a shutdown wakes tasks would
/// differ between two simulation runs of one seed in one process. `Notify` wakes in a fixed
/// order.
struct ShutdownState {
    triggered: AtomicBool,
    notify: tokio::sync::Notify,
}

/// The sending half of a shutdown signal; dropping it also signals shutdown.
pub struct ShutdownTrigger {
    state: Arc<ShutdownState>,
}

/// A cloneable "stop now" signal handed to every component's `run`.
#[derive(Clone)]
pub struct Shutdown {
    state: Arc<ShutdownState>,
}

/// A new trigger and the signal it drives.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let state = Arc::new(ShutdownState {
        triggered: AtomicBool::new(false),
        notify: tokio::sync::Notify::new(),
    });
    (
        ShutdownTrigger {
            state: state.clone(),
        },
        Shutdown { state },
    )
}

impl ShutdownTrigger {
    /// Signals every clone of the paired [`Shutdown`].
    pub fn trigger(&self) {
        self.state.triggered.store(true, Ordering::SeqCst);
        self.state.notify.notify_waiters();
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.trigger();
    }
}

impl Shutdown {
    /// True once shutdown was triggered (or the trigger was dropped).
    pub fn is_triggered(&self) -> bool {
        self.state.triggered.load(Ordering::SeqCst)
    }

    /// Resolves when shutdown is triggered.
    pub async fn wait(&mut self) {
        loop {
            // A `Notified` sees every `notify_waiters` after its creation, polled or not,
            // so creating it before reading the flag cannot miss a trigger.
            let notified = self.state.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_every_waiter_and_later_waits_return_at_once() {
        crate::platform::block_on(async {
            let (trigger, shutdown) = shutdown_pair();
            assert!(!shutdown.is_triggered());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let mut s = shutdown.clone();
                    spawn(async move { s.wait().await })
                })
                .collect();
            yield_now().await;
            trigger.trigger();
            for w in waiters {
                w.await.expect("waiter finished");
            }
            let mut late = shutdown.clone();
            late.wait().await;
            assert!(late.is_triggered());
        });
    }

    #[test]
    fn dropping_the_trigger_signals_shutdown() {
        crate::platform::block_on(async {
            let (trigger, mut shutdown) = shutdown_pair();
            let waiter = {
                let mut s = shutdown.clone();
                spawn(async move { s.wait().await })
            };
            drop(trigger);
            waiter.await.expect("waiter finished");
            shutdown.wait().await;
        });
    }
}
