//! Leader election on a Lease object, as client-go does it: the holder renews the lease every
//! retry period; a candidate takes it over only after it has watched the record stay
//! unchanged for a whole lease duration *on its own clock* (never trusting another node's
//! timestamps); a leader that has not renewed within the renew deadline stops acting at once,
//! which is shorter than the lease duration, so its successor cannot start before it stopped
//! (as long as clocks run at about the same rate — wall-clock offsets do not matter).
//!
//! Leader election does not make two leaders impossible under every fault, so every write a
//! leader makes is still conditioned on `resourceVersion`.
//!
//! [`Elector`] is the pure core; [`run`] drives it against the API server.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Api, ClientError};
use crate::api::coordination::{Lease, LeaseSpec};
use crate::api::time::rfc3339_micros;
use crate::platform::task::Shutdown;
use crate::platform::time::Clock;

/// client-go's defaults for the scheduler and the controller manager.
pub const LEASE_DURATION_MS: u64 = 15_000;
pub const RENEW_DEADLINE_MS: u64 = 10_000;
pub const RETRY_PERIOD_MS: u64 = 2_000;

/// Timings and the candidate's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    pub identity: String,
    pub lease_duration_ms: u64,
    pub renew_deadline_ms: u64,
    pub retry_period_ms: u64,
}

impl ElectionConfig {
    /// Upstream's timings (15 s lease, 10 s renew deadline, 2 s retry).
    pub fn upstream(identity: &str) -> ElectionConfig {
        ElectionConfig {
            identity: identity.to_string(),
            lease_duration_ms: LEASE_DURATION_MS,
            renew_deadline_ms: RENEW_DEADLINE_MS,
            retry_period_ms: RETRY_PERIOD_MS,
        }
    }
}

/// What a Lease says, as far as the election is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub duration_secs: i64,
    pub transitions: i64,
    pub acquire_time: String,
    pub renew_time: String,
}

/// What the candidate should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No lease exists: create it holding it.
    Create(LeaseRecord),
    /// Write this record over the one observed (renewal or take-over), conditioned on it.
    Write(LeaseRecord),
    /// Someone else holds a live lease.
    Wait,
}

/// One candidate's view of the election.
#[derive(Debug, Clone)]
pub struct Elector {
    cfg: ElectionConfig,
    /// The last record seen, its resourceVersion, and when (on our clock) it last changed.
    /// The version counts as a change too: a renewal that happens to write identical
    /// fields is still a renewal.
    observed: Option<(LeaseRecord, String, u64)>,
    /// When our last write of the lease (as holder) succeeded.
    renewed_at_ms: Option<u64>,
}

impl Elector {
    pub fn new(cfg: ElectionConfig) -> Elector {
        assert!(
            cfg.renew_deadline_ms < cfg.lease_duration_ms,
            "a leader must give up before its lease can be taken over"
        );
        Elector {
            cfg,
            observed: None,
            renewed_at_ms: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// Records the lease as read now (`None`: there is none) at `version`.
    pub fn observe(&mut self, record: Option<LeaseRecord>, version: &str, now_ms: u64) {
        match record {
            None => self.observed = None,
            Some(r) => {
                let same = self
                    .observed
                    .as_ref()
                    .is_some_and(|(o, v, _)| *o == r && v == version);
                if !same {
                    self.observed = Some((r, version.to_string(), now_ms));
                }
            }
        }
    }

    /// The next step, given the time now (`now_text` is it as a MicroTime for the record).
    pub fn step(&self, now_ms: u64, now_text: &str) -> Step {
        let duration_secs = (self.cfg.lease_duration_ms / 1000) as i64;
        let fresh = |transitions: i64| LeaseRecord {
            holder: self.cfg.identity.clone(),
            duration_secs,
            transitions,
            acquire_time: now_text.to_string(),
            renew_time: now_text.to_string(),
        };
        let Some((r, _, seen_at)) = &self.observed else {
            return Step::Create(fresh(0));
        };
        if r.holder == self.cfg.identity {
            let mut renewed = r.clone();
            renewed.renew_time = now_text.to_string();
            renewed.duration_secs = duration_secs;
            return Step::Write(renewed);
        }
        let lease_ms = if r.duration_secs > 0 {
            r.duration_secs as u64 * 1000
        } else {
            self.cfg.lease_duration_ms
        };
        if r.holder.is_empty() || now_ms >= seen_at + lease_ms {
            return Step::Write(fresh(r.transitions + 1));
        }
        Step::Wait
    }

    /// Our write of `record`, sent at `now_ms` (before it could commit), succeeded.
    pub fn written(&mut self, record: LeaseRecord, now_ms: u64) {
        assert_eq!(
            record.holder, self.cfg.identity,
            "we only write ourselves in"
        );
        self.observed = Some((record, String::new(), now_ms));
        self.renewed_at_ms = Some(now_ms);
    }

    /// Whether this candidate may act as leader now: it holds the lease and renewed it
    /// within the renew deadline.
    pub fn is_leader(&self, now_ms: u64) -> bool {
        let holds = self
            .observed
            .as_ref()
            .is_some_and(|(r, _, _)| r.holder == self.cfg.identity);
        holds
            && self
                .renewed_at_ms
                .is_some_and(|t| now_ms < t + self.cfg.renew_deadline_ms)
    }

    /// Gives the lease up locally (shutdown); the caller may also clear the holder.
    pub fn step_down(&mut self) {
        self.renewed_at_ms = None;
    }
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let s = &lease.spec;
    LeaseRecord {
        holder: s.holder_identity.clone().unwrap_or_default(),
        duration_secs: s.lease_duration_seconds.unwrap_or(0) as i64,
        transitions: s.lease_transitions.unwrap_or(0) as i64,
        acquire_time: s.acquire_time.clone().unwrap_or_default(),
        renew_time: s.renew_time.clone().unwrap_or_default(),
    }
}

fn spec_of(r: &LeaseRecord) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(r.holder.clone()),
        lease_duration_seconds: Some(r.duration_secs as i32),
        lease_transitions: Some(r.transitions as i32),
        acquire_time: Some(r.acquire_time.clone()),
        renew_time: Some(r.renew_time.clone()),
        ..Default::default()
    }
}

/// A shared view of whether this process leads; cheap to clone and check before each write.
#[derive(Clone)]
pub struct Leadership {
    elector: Arc<Mutex<Elector>>,
    changed: Arc<Notify>,
    clock: Clock,
}

impl Leadership {
    pub fn new(cfg: ElectionConfig, clock: Clock) -> Leadership {
        Leadership {
            elector: Arc::new(Mutex::new(Elector::new(cfg))),
            changed: Arc::new(Notify::new()),
            clock,
        }
    }

    fn elector(&self) -> MutexGuard<'_, Elector> {
        self.elector.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether to act as leader at this instant.
    pub fn is_leader(&self) -> bool {
        let now = self.clock.now_ms();
        self.elector().is_leader(now)
    }

    /// Waits until this process leads (or `shutdown`); true if it leads.
    pub async fn wait_until_leader(&self, shutdown: &mut Shutdown) -> bool {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_leader() {
                return true;
            }
            if shutdown.is_triggered() {
                return false;
            }
            tokio::select! {
                biased;
                _ = shutdown.wait() => return false,
                _ = notified => {}
            }
        }
    }
}

/// Campaigns for and holds the lease `namespace/name` until `shutdown`, updating
/// `leadership`. Every attempt is one read and at most one conditioned write.
pub async fn run(api: Api<Lease>, name: &str, leadership: Leadership, mut shutdown: Shutdown) {
    let clock = leadership.clock.clone();
    let retry = Duration::from_millis(leadership.elector().cfg.retry_period_ms);
    while !shutdown.is_triggered() {
        let was = leadership.is_leader();
        if let Err(e) = attempt(&api, name, &leadership).await {
            tracing::debug!(lease = name, error = %e, "lease attempt failed");
        }
        if was != leadership.is_leader() {
            tracing::info!(
                lease = name,
                leading = !was,
                identity = leadership.elector().identity(),
                "leadership changed"
            );
        }
        leadership.changed.notify_waiters();
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            _ = clock.sleep(retry) => {}
        }
    }
    leadership.elector().step_down();
    leadership.changed.notify_waiters();
}

async fn attempt(api: &Api<Lease>, name: &str, leadership: &Leadership) -> Result<(), ClientError> {
    let clock = &leadership.clock;
    let current = match api.get(name).await {
        Ok(l) => Some(l),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let now = clock.now_ms();
    let now_text = rfc3339_micros(clock.wall_unix_ms() * 1000);
    let step = {
        let mut el = leadership.elector();
        let version = current
            .as_ref()
            .map(|l| l.metadata.resource_version.clone())
            .unwrap_or_default();
        el.observe(current.as_ref().map(record_of), &version, now);
        el.step(now, &now_text)
    };
    let record = match &step {
        Step::Wait => return Ok(()),
        Step::Create(r) | Step::Write(r) => r.clone(),
    };
    let written = match (step, current) {
        (Step::Create(_), _) | (_, None) => {
            let mut lease = Lease::default();
            lease.metadata.name = name.to_string();
            lease.spec = spec_of(&record);
            api.create(&lease).await
        }
        (_, Some(mut lease)) => {
            // Conditioned on the resourceVersion just read: a racing candidate gets 409.
            lease.spec = spec_of(&record);
            api.replace(&lease).await
        }
    };
    written?;
    // The renew deadline counts from when the write was sent, not from its reply: a
    // candidate may start waiting as soon as the write commits, and a slow reply must not
    // stretch this leader's term past the point where that candidate may take over.
    leadership.elector().written(record, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(id: &str) -> ElectionConfig {
        ElectionConfig::upstream(id)
    }

    #[test]
    fn a_candidate_takes_over_only_after_a_full_lease_without_change() {
        let mut a = Elector::new(cfg("a"));
        let mut b = Elector::new(cfg("b"));
        let Step::Create(rec) = a.step(0, "t0") else {
            panic!("no lease yet: create it")
        };
        a.written(rec.clone(), 0);
        assert!(a.is_leader(0));
        b.observe(Some(rec.clone()), "1", 1_000);
        assert_eq!(b.step(15_999, "t"), Step::Wait);
        let Step::Write(taken) = b.step(16_000, "t16") else {
            panic!("expired: take over")
        };
        assert_eq!((taken.holder.as_str(), taken.transitions), ("b", 1));
        // a stopped acting at its renew deadline, before b could take over.
        assert!(!a.is_leader(RENEW_DEADLINE_MS));
        // A renewal seen by b restarts b's wait.
        let mut renewed = rec;
        renewed.renew_time = "t5".into();
        b.observe(Some(renewed), "2", 5_000);
        assert_eq!(b.step(16_000, "t16"), Step::Wait);
    }

    /// A shared lease store with conditioned writes, for the model below.
    struct Store {
        record: Option<LeaseRecord>,
        version: u64,
    }

    proptest! {
        /// However reads, writes, lost replies and late replies interleave (and with
        /// wall-clock offsets, which the election never relies on), two candidates never
        /// both lead at once.
        #[test]
        fn never_two_leaders(
            plan in proptest::collection::vec((0usize..3, 0u8..5, 0u64..3_000), 1..300),
        ) {
            let mut electors: Vec<Elector> =
                ["a", "b", "c"].iter().map(|id| Elector::new(cfg(id))).collect();
            // A read snapshot per candidate: (record, version) read at some time.
            let mut reads: Vec<Option<(Option<LeaseRecord>, u64)>> = vec![None; 3];
            // A committed write whose reply has not arrived yet: (record, time it was sent).
            let mut replies: Vec<Option<(LeaseRecord, u64)>> = vec![None; 3];
            let mut store = Store { record: None, version: 0 };
            let mut now = 0u64;
            for (who, action, advance) in plan {
                now += advance;
                match action {
                    0 => reads[who] = Some((store.record.clone(), store.version)),
                    1 | 2 => {
                        // Act on the last read (possibly stale): observe it, then write
                        // conditioned on its version. Action 2 loses the write's reply;
                        // action 1's reply arrives later (action 3).
                        let Some((rec, ver)) = reads[who].take() else { continue };
                        electors[who].observe(rec, &ver.to_string(), now);
                        let step = electors[who].step(now, &format!("t{now}"));
                        let r = match step {
                            Step::Wait => continue,
                            Step::Create(r) | Step::Write(r) => r,
                        };
                        if store.version == ver {
                            store.record = Some(r.clone());
                            store.version += 1;
                            if action == 1 {
                                replies[who] = Some((r, now));
                            }
                        }
                    }
                    3 => {
                        if let Some((r, sent_at)) = replies[who].take() {
                            electors[who].written(r, sent_at);
                        }
                    }
                    _ => {}
                }
                let leaders: Vec<usize> =
                    (0..3).filter(|i| electors[*i].is_leader(now)).collect();
                prop_assert!(leaders.len() <= 1, "two leaders at {}: {:?}", now, leaders);
            }
        }
    }
}
