//! Time. Each node owns a [`Clock`]: a monotonic reading (time since the clock was made) and
//! a wall reading (Unix milliseconds). Under simulation the test can give each node's clock an
//! offset (wall), a drift (rate) and forward jumps, so components meet skewed clocks.
//!
//! Durations handed to `sleep`/`timeout`/`interval` are in the node's own time: a node whose
//! clock runs fast (positive drift) wakes earlier in the simulator's time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Parts per million in one.
const PPM_PER_UNIT: f64 = 1_000_000.0;
/// The fastest or slowest a clock may be made to run, so a drift never stops time.
const MAX_DRIFT_PPM: i64 = 500_000;

#[derive(Debug)]
struct Skew {
    /// Host instant and node reading where the current drift rate took effect.
    anchor_host: tokio::time::Instant,
    anchor_node: Duration,
    drift_ppm: i64,
    wall_offset_ms: i64,
}

/// A node's clock. Cloning shares the same skew.
#[derive(Clone, Debug)]
pub struct Clock {
    skew: Arc<Mutex<Skew>>,
}

/// The timeout of [`Clock::timeout`] expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock reading zero now, with no skew.
    pub fn new() -> Clock {
        Clock {
            skew: Arc::new(Mutex::new(Skew {
                anchor_host: tokio::time::Instant::now(),
                anchor_node: Duration::ZERO,
                drift_ppm: 0,
                wall_offset_ms: 0,
            })),
        }
    }

    fn rate(drift_ppm: i64) -> f64 {
        1.0 + drift_ppm as f64 / PPM_PER_UNIT
    }

    /// Monotonic time since this clock was made, in the node's own time.
    pub fn now(&self) -> Duration {
        let s = self.skew.lock().expect("clock lock");
        let host = tokio::time::Instant::now().saturating_duration_since(s.anchor_host);
        s.anchor_node + host.mul_f64(Self::rate(s.drift_ppm))
    }

    /// Milliseconds of [`Clock::now`].
    pub fn now_ms(&self) -> u64 {
        self.now().as_millis() as u64
    }

    /// Wall-clock time as Unix milliseconds, including this node's offset.
    pub fn wall_unix_ms(&self) -> i64 {
        let offset = self.skew.lock().expect("clock lock").wall_offset_ms;
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        since_epoch.as_millis() as i64 + offset
    }

    /// Converts a duration of node time into host time under the current drift.
    fn to_host(&self, d: Duration) -> Duration {
        let drift = self.skew.lock().expect("clock lock").drift_ppm;
        d.div_f64(Self::rate(drift))
    }

    /// Sleeps for `d` of node time.
    pub fn sleep(&self, d: Duration) -> Sleep {
        Sleep::until(tokio::time::Instant::now() + self.to_host(d))
    }

    /// Runs `fut` with a deadline `d` of node time from now.
    pub async fn timeout<F: Future>(&self, d: Duration, fut: F) -> Result<F::Output, Elapsed> {
        let deadline = self.sleep(d);
        tokio::pin!(fut);
        tokio::pin!(deadline);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            deadline.as_mut().poll(cx).map(|()| Err(Elapsed))
        })
        .await
    }

    /// A ticker firing every `period` of node time (the first tick at once); missed ticks
    /// are delayed, not bunched.
    pub fn interval(&self, period: Duration) -> Interval {
        self.interval_from(period, false)
    }

    /// Like [`Clock::interval`], but the first tick comes one period from now.
    pub fn interval_after(&self, period: Duration) -> Interval {
        self.interval_from(period, true)
    }

    fn interval_from(&self, period: Duration, skip_first: bool) -> Interval {
        let period = self.to_host(period).max(Duration::from_micros(1));
        let first = tokio::time::Instant::now() + if skip_first { period } else { Duration::ZERO };
        Interval {
            period,
            sleep: Box::pin(Sleep::until(first)),
        }
    }

    /// Sets the wall-clock offset (simulated clock skew).
    pub fn set_wall_offset_ms(&self, offset_ms: i64) {
        self.skew.lock().expect("clock lock").wall_offset_ms = offset_ms;
    }

    /// Sets the drift rate in parts per million (clamped to ±50 %).
    pub fn set_drift_ppm(&self, drift_ppm: i64) {
        let now = self.now();
        let mut s = self.skew.lock().expect("clock lock");
        s.anchor_host = tokio::time::Instant::now();
        s.anchor_node = now;
        s.drift_ppm = drift_ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM);
    }

    /// Jumps the monotonic reading forward (a paused VM resuming) and the wall clock by the
    /// same amount.
    pub fn jump_forward(&self, d: Duration) {
        let mut s = self.skew.lock().expect("clock lock");
        s.anchor_node += d;
        s.wall_offset_ms += d.as_millis() as i64;
    }
}

/// A sleep that registers its timer once per waiting task. The simulator's `Sleep` adds a
/// fresh timer on every poll and never removes the old ones, so a sleep polled inside a busy
/// `select!` loop (a raft ticker, a stream's lifetime) would fill the timer heap with
/// duplicates; skipping polls while the same task is already registered avoids that and is
/// equally correct on tokio, whose registration also persists until the deadline.
pub struct Sleep {
    inner: Pin<Box<tokio::time::Sleep>>,
    registered: Option<Waker>,
}

impl Sleep {
    fn until(deadline: tokio::time::Instant) -> Sleep {
        Sleep {
            inner: Box::pin(tokio::time::sleep_until(deadline)),
            registered: None,
        }
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.inner.deadline()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if let Some(w) = &this.registered {
            if w.will_wake(cx.waker()) && tokio::time::Instant::now() < this.deadline() {
                return Poll::Pending;
            }
        }
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.registered = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                this.registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A periodic ticker from [`Clock::interval`].
pub struct Interval {
    period: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Interval {
    /// Waits for the next tick. Cancel-safe: a tick future dropped before it fires leaves
    /// the deadline as it was.
    pub async fn tick(&mut self) {
        self.sleep.as_mut().await;
        let next = tokio::time::Instant::now() + self.period;
        self.sleep = Box::pin(Sleep::until(next));
    }
}
