//! Tasks and shutdown signals. Components spawn through here so that the simulation's
//! scheduler (madsim) owns every task of a simulated node, and a node's tasks die with it.

use std::future::Future;

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

/// The sending half of a shutdown signal; dropping it also signals shutdown.
pub struct ShutdownTrigger {
    tx: tokio::sync::watch::Sender<bool>,
}

/// A cloneable "stop now" signal handed to every component's `run`.
#[derive(Clone)]
pub struct Shutdown {
    rx: tokio::sync::watch::Receiver<bool>,
}

/// A new trigger and the signal it drives.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Signals every clone of the paired [`Shutdown`].
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// True once shutdown was triggered (or the trigger was dropped).
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Resolves when shutdown is triggered.
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}
