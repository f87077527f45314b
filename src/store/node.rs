//! The member's raft loop: one task that owns raft-rs's `RawNode`, the WAL and the state
//! machine, and follows raft-rs's Ready contract (send what may go now; install snapshots;
//! apply committed entries; persist entries and hard state and fsync; then send what
//! depended on them; advance).
//!
//! Clients reach it through [`Command`]s: proposals wait until their entry is applied on
//! this member (a follower's proposals are forwarded by raft-rs to the leader);
//! linearizable reads use ReadIndex, batched, and are answered once this member has applied
//! up to the read index.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, StateRole};
use tokio::sync::{mpsc, oneshot};

use super::apply::{self, ApplyOutcome};
use super::error::StoreError;
use super::lessor::Lessor;
use super::pb::rkubepeerpb::{internal_request, InternalRequest, MemberAttributes};
use super::raftstore::{Persist, RaftStore, RaftStoreError};
use super::transport::{Feedback, Transport};
use super::Shared;
use crate::platform::task::Shutdown;
use crate::platform::Platform;

/// Commands queued to the raft loop before callers wait.
pub const COMMAND_QUEUE_LEN: usize = 8192;
/// Most commands or peer messages taken per loop turn before handling Ready.
pub const MAX_BATCH_PER_TURN: usize = 1024;

/// What the raft loop is asked to do.
pub enum Command {
    Propose {
        req: internal_request::Request,
        reply: oneshot::Sender<Result<ApplyOutcome, StoreError>>,
    },
    Read {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    LeaseKeepAlive {
        id: i64,
        reply: oneshot::Sender<Result<i64, LeaseCallError>>,
    },
    LeaseTimeToLive {
        id: i64,
        reply: oneshot::Sender<Result<(i64, i64), LeaseCallError>>,
    },
    /// Take a snapshot now and compact the WAL (Defragment).
    Snapshot {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What the raft loop reports after each Ready, for the simulation's online checkers.
#[derive(Debug, Clone, Default)]
pub struct RaftView {
    pub member: u64,
    pub term: u64,
    pub vote: u64,
    pub leader: u64,
    pub is_leader: bool,
    pub commit: u64,
    /// Term of the entry at `commit` (0 if compacted away).
    pub commit_term: u64,
    pub first_index: u64,
    pub last_index: u64,
    /// Term of the entry at `last_index`.
    pub last_term: u64,
    /// Entries applied in this Ready: (index, term, crc32 of the entry data).
    pub applied: Vec<(u64, u64, u32)>,
    /// (index, term) of every entry in the log, sent when this member just became leader.
    pub leader_log: Option<Vec<(u64, u64)>>,
}

/// Receives a [`RaftView`] after every Ready (simulation checkers; `None` in production).
pub trait RaftObserver: Send + Sync {
    fn observe(&self, view: &RaftView);
}

/// Deliberate bugs for the checkers' negative controls; never set outside tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Acknowledge writes without fsyncing the WAL.
    AckBeforeFsync,
    /// Serve linearizable reads on a follower without ReadIndex.
    StaleFollowerRead,
    /// Drop one watch event (the first event of the 5th published revision).
    DropWatchEvent,
    /// After a restart, apply the first replayed entry twice.
    ApplyTwiceAfterRestart,
    /// Watch progress notifications claim one revision more than the member has sent.
    ProgressAhead,
}

/// Lease calls must reach the leader; a follower answers with who that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseCallError {
    NotLeader(u64),
    Store(StoreError),
}

/// Timing and sizing of one member.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub voters: Vec<u64>,
    pub tick_ms: u64,
    pub heartbeat_ticks: usize,
    /// Lower bound of the election timeout in ticks; the exact value is drawn per member.
    pub election_ticks: usize,
    pub request_timeout_ms: u64,
    /// Applied entries between snapshots.
    pub snapshot_count: u64,
    /// Entries kept behind a snapshot so slow followers catch up without one.
    pub catchup_entries: u64,
    /// Period of progress notifications to idle watchers that asked for them.
    pub watch_progress_notify_interval_ms: u64,
    pub attributes: MemberAttributes,
    pub planted_bug: Option<PlantedBug>,
}

struct Waiter {
    reply: oneshot::Sender<Result<ApplyOutcome, StoreError>>,
    deadline_ms: u64,
}

type ReadReply = oneshot::Sender<Result<(), StoreError>>;

#[derive(Default)]
struct ReadQueue {
    /// Reads not yet covered by an issued ReadIndex.
    pending: Vec<ReadReply>,
    /// The ReadIndex in flight: its context, when it was issued (ms) and its readers.
    in_flight: Option<(u64, u64, Vec<ReadReply>)>,
    /// Reads whose index is known, waiting for apply: (index, readers).
    ready: Vec<(u64, Vec<ReadReply>)>,
    next_ctx: u64,
}

/// The raft loop's state.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<RaftStore>,
    store: RaftStore,
    persist: Persist,
    shared: Arc<Shared>,
    platform: Platform,
    transport: Transport,
    waiters: BTreeMap<u64, Waiter>,
    reads: ReadQueue,
    lessor: Lessor,
    last_snapshot_index: u64,
    feedback: Vec<Feedback>,
    observer: Option<Arc<dyn RaftObserver>>,
    view: RaftView,
    /// For [`PlantedBug::ApplyTwiceAfterRestart`]: still to fire.
    apply_twice_pending: bool,
}

/// Why the raft loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("durable storage failed: {0}")]
    Storage(#[from] RaftStoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A BUGGIFY site fired: the member stops here, like etcd at a failpoint that panics.
    #[error("injected fault: buggify site {0}")]
    Buggified(&'static str),
}

/// BUGGIFY sites, at the places etcd's robustness tests put failpoints.
pub mod sites {
    pub const BEFORE_WAL_SAVE: &str = "raft.before_wal_save";
    pub const AFTER_WAL_SAVE: &str = "raft.after_wal_save";
    pub const BEFORE_APPLY: &str = "raft.before_apply";
    pub const AFTER_APPLY: &str = "raft.after_apply";
    pub const BEFORE_SNAPSHOT_SAVE: &str = "raft.before_snapshot_save";
    pub const AFTER_SNAPSHOT_SAVE: &str = "raft.after_snapshot_save";
    pub const BEFORE_SNAPSHOT_APPLY: &str = "raft.before_snapshot_apply";
    pub const AFTER_SNAPSHOT_APPLY: &str = "raft.after_snapshot_apply";
    pub const DURING_COMPACTION: &str = "mvcc.during_compaction";
    pub const BEFORE_LEADER_SEND: &str = "raft.before_leader_send";
    pub const BEFORE_FOLLOWER_SEND: &str = "raft.before_follower_send";
}

/// The raft-rs configuration of a member.
///
/// raft-rs draws each randomized election timeout from an unseeded RNG. The raft loop
/// overrides every such draw, right after the `tick`/`step` call that made it and before
/// raft-rs compares against it, with a draw from the node's seeded RNG
/// ([`Node::reseed_election_timeout`]), so a simulated run stays a function of its seed.
/// Unlike pinning `max = min + 1` (one fixed timeout per member for its whole life), this
/// keeps Raft's per-election randomization: members with equal fixed timeouts can split
/// votes forever on a network without jitter.
pub fn raft_config(cfg: &NodeConfig, applied: u64) -> raft::Config {
    raft::Config {
        id: cfg.id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        min_election_tick: cfg.election_ticks,
        max_election_tick: 2 * cfg.election_ticks,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        read_only_option: raft::ReadOnlyOption::Safe,
        ..Default::default()
    }
}

impl Node {
    /// Builds the loop state around a recovered log and state machine.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: NodeConfig,
        raw: RawNode<RaftStore>,
        store: RaftStore,
        persist: Persist,
        shared: Arc<Shared>,
        platform: Platform,
        transport: Transport,
        last_snapshot_index: u64,
    ) -> Node {
        Node {
            cfg,
            raw,
            store,
            persist,
            shared,
            platform,
            transport,
            waiters: BTreeMap::new(),
            reads: ReadQueue::default(),
            lessor: Lessor::default(),
            last_snapshot_index,
            feedback: Vec::new(),
            observer: None,
            view: RaftView::default(),
            apply_twice_pending: false,
        }
    }

    /// Attaches the simulation's online checker.
    pub fn with_observer(mut self, observer: Option<Arc<dyn RaftObserver>>) -> Node {
        self.observer = observer;
        self
    }

    /// Tells the loop it restarted from existing state (arms [`PlantedBug::ApplyTwiceAfterRestart`]).
    pub fn recovered(mut self, was_recovered: bool) -> Node {
        self.apply_twice_pending = was_recovered;
        self
    }

    /// Fails here if BUGGIFY fires this site (never in the real build).
    fn buggify(&self, site: &'static str) -> Result<(), NodeError> {
        if self.platform.buggify.fire(site) {
            tracing::warn!(site, "buggify: stopping the member here");
            return Err(NodeError::Buggified(site));
        }
        Ok(())
    }

    fn bug(&self, b: PlantedBug) -> bool {
        self.cfg.planted_bug == Some(b)
    }

    fn now_ms(&self) -> u64 {
        self.platform.clock.now_ms()
    }

    fn min_lease_ttl_secs(&self) -> i64 {
        super::min_lease_ttl_secs(self.cfg.election_ticks as u64, self.cfg.tick_ms)
    }

    /// Runs until shutdown or a storage failure.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut peer_rx: mpsc::Receiver<Message>,
        mut feedback_rx: mpsc::Receiver<Feedback>,
        mut shutdown: Shutdown,
    ) -> Result<(), NodeError> {
        self.reseed_election_timeout();
        let mut ticker = self
            .platform
            .clock
            .interval(Duration::from_millis(self.cfg.tick_ms));
        let mut attr_ticks = 0u64;
        let progress_ticks = self
            .cfg
            .watch_progress_notify_interval_ms
            .div_ceil(self.cfg.tick_ms.max(1))
            .max(1);
        loop {
            // `biased`: an unbiased select draws its branch order from tokio's process-global
            // counter, so two simulation runs of one seed in one process would diverge. The
            // order below also keeps ticks (elections, timeouts) from starving.
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = ticker.tick() => {
                    self.raw.tick();
                    self.reseed_election_timeout();
                    self.on_tick();
                    attr_ticks += 1;
                    if attr_ticks.is_multiple_of(10) {
                        self.publish_attributes();
                    }
                    if attr_ticks.is_multiple_of(progress_ticks) {
                        self.notify_watch_progress();
                    }
                }
                Some(cmd) = commands.recv() => self.on_command(cmd),
                Some(msg) = peer_rx.recv() => self.step(msg),
                Some(fb) = feedback_rx.recv() => self.on_feedback(fb),
            }
            for _ in 0..MAX_BATCH_PER_TURN {
                let mut progressed = false;
                if let Ok(cmd) = commands.try_recv() {
                    self.on_command(cmd);
                    progressed = true;
                }
                if let Ok(msg) = peer_rx.try_recv() {
                    self.step(msg);
                    progressed = true;
                }
                if !progressed {
                    break;
                }
            }
            self.issue_reads();
            self.handle_ready()?;
            self.after_apply()?;
        }
        self.fail_all(StoreError::Stopped);
        Ok(())
    }

    fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(error = %e, "raft step ignored a message");
        }
        self.reseed_election_timeout();
    }

    /// Replaces raft-rs's (unseeded) election timeout draw with one from the node's seeded
    /// RNG whenever raft-rs has just reset its election timer.
    fn reseed_election_timeout(&mut self) {
        if self.raw.raft.election_elapsed == 0 {
            let min = self.cfg.election_ticks as u64;
            let t = self.platform.rng.range_u64(min, 2 * min) as usize;
            self.raw.raft.set_randomized_election_timeout(t);
        }
    }

    fn on_feedback(&mut self, fb: Feedback) {
        match fb {
            Feedback::Unreachable(id) => self.raw.report_unreachable(id),
            Feedback::SnapshotFinished(id) => {
                self.raw.report_snapshot(id, raft::SnapshotStatus::Finish)
            }
            Feedback::SnapshotFailed(id) => {
                self.raw.report_snapshot(id, raft::SnapshotStatus::Failure)
            }
        }
    }

    fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Propose { req, reply } => self.propose(req, Some(reply)),
            Command::Read { reply } => {
                if self.bug(PlantedBug::StaleFollowerRead) && !self.is_leader() {
                    let _ = reply.send(Ok(()));
                } else if self.leader_id() == raft::INVALID_ID {
                    let _ = reply.send(Err(StoreError::NoLeader));
                } else {
                    self.reads.pending.push(reply);
                }
            }
            Command::LeaseKeepAlive { id, reply } => {
                let r = self.lease_call(id, |l, now| l.renew(id, now));
                let _ = reply.send(r);
            }
            Command::LeaseTimeToLive { id, reply } => {
                let r = self.lease_call(id, |l, now| l.remaining(id, now));
                let _ = reply.send(r);
            }
            Command::Snapshot { reply } => {
                let r = self
                    .take_snapshot()
                    .map_err(|e| StoreError::Internal(e.to_string()));
                let _ = reply.send(r);
            }
        }
    }

    fn lease_call<T>(
        &mut self,
        id: i64,
        f: impl FnOnce(&mut Lessor, u64) -> Option<T>,
    ) -> Result<T, LeaseCallError> {
        if !self.is_leader() || !self.lessor.is_active() {
            return Err(match self.leader_id() {
                raft::INVALID_ID => LeaseCallError::Store(StoreError::NoLeader),
                l => LeaseCallError::NotLeader(l),
            });
        }
        let now = self.now_ms();
        f(&mut self.lessor, now).ok_or_else(|| {
            let _ = id;
            LeaseCallError::Store(StoreError::Mvcc(super::mvcc::MvccError::LeaseNotFound))
        })
    }

    fn propose(
        &mut self,
        req: internal_request::Request,
        reply: Option<oneshot::Sender<Result<ApplyOutcome, StoreError>>>,
    ) {
        let id = self.platform.rng.next_u64() | 1;
        let data = InternalRequest {
            id,
            request: Some(req),
        }
        .encode_to_vec();
        match self.raw.propose(vec![], data) {
            Ok(()) => {
                if let Some(reply) = reply {
                    let deadline_ms = self.now_ms() + self.cfg.request_timeout_ms;
                    self.waiters.insert(id, Waiter { reply, deadline_ms });
                }
            }
            Err(_) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(StoreError::NoLeader));
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now_ms();
        let expired: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.deadline_ms <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(w) = self.waiters.remove(&id) {
                let _ = w.reply.send(Err(StoreError::Timeout));
            }
        }
        if let Some((_, issued, _)) = &self.reads.in_flight {
            if now >= issued + self.cfg.request_timeout_ms {
                let (_, _, readers) = self.reads.in_flight.take().expect("in flight");
                for r in readers {
                    let _ = r.send(Err(StoreError::Timeout));
                }
            }
        }
        if self.is_leader() && self.lessor.is_active() {
            for id in self.lessor.expired(now) {
                let req = internal_request::Request::LeaseRevoke(
                    super::pb::etcdserverpb::LeaseRevokeRequest { id },
                );
                self.propose(req, None);
            }
        }
    }

    fn notify_watch_progress(&mut self) {
        let mut st = self.shared.state.write().expect("state lock");
        let header = self
            .shared
            .header(st.mvcc.current_revision(), self.raw.raft.term);
        st.watch.notify_progress(&header);
    }

    fn publish_attributes(&mut self) {
        let mine = &self.cfg.attributes;
        let known = {
            let st = self.shared.state.read().expect("state lock");
            st.members.get(&mine.id) == Some(mine)
        };
        if !known && self.leader_id() != raft::INVALID_ID {
            self.propose(internal_request::Request::Member(mine.clone()), None);
        }
    }

    fn issue_reads(&mut self) {
        if self.reads.in_flight.is_some() || self.reads.pending.is_empty() {
            return;
        }
        self.reads.next_ctx += 1;
        let ctx = self.reads.next_ctx;
        let readers = std::mem::take(&mut self.reads.pending);
        self.raw.read_index(ctx.to_le_bytes().to_vec());
        self.reads.in_flight = Some((ctx, self.now_ms(), readers));
    }

    fn on_read_states(&mut self, states: Vec<raft::ReadState>) {
        for rs in states {
            let Some((ctx, _, _)) = &self.reads.in_flight else {
                continue;
            };
            if rs.request_ctx.as_slice() == ctx.to_le_bytes() {
                let (_, _, readers) = self.reads.in_flight.take().expect("in flight");
                self.reads.ready.push((rs.index, readers));
            }
        }
    }

    fn send(&mut self, msgs: Vec<Message>) -> Result<(), NodeError> {
        if !msgs.is_empty() {
            let site = if self.is_leader() {
                sites::BEFORE_LEADER_SEND
            } else {
                sites::BEFORE_FOLLOWER_SEND
            };
            self.buggify(site)?;
            self.transport.send(msgs, &mut self.feedback);
        }
        Ok(())
    }

    fn handle_ready(&mut self) -> Result<(), NodeError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            self.on_role(ss.raft_state);
        }
        self.send(rd.take_messages())?;
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone())?;
        }
        self.apply_entries(rd.take_committed_entries())?;
        let wrote = !rd.entries().is_empty() || rd.hs().is_some();
        if wrote {
            self.buggify(sites::BEFORE_WAL_SAVE)?;
        }
        if !rd.entries().is_empty() {
            self.persist.append(rd.entries(), None)?;
            self.store.mem.wl().append(rd.entries())?;
        }
        if let Some(hs) = rd.hs() {
            self.persist.append(&[], Some(hs))?;
            self.store.mem.wl().set_hardstate(hs.clone());
        }
        if wrote && !self.bug(PlantedBug::AckBeforeFsync) {
            self.persist.sync()?;
        }
        if wrote {
            self.buggify(sites::AFTER_WAL_SAVE)?;
        }
        self.on_read_states(rd.take_read_states());
        self.send(rd.take_persisted_messages())?;
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.store.mem.wl().mut_hard_state().set_commit(commit);
        }
        self.send(light.take_messages())?;
        self.apply_entries(light.take_committed_entries())?;
        self.raw.advance_apply();
        let fb = std::mem::take(&mut self.feedback);
        for f in fb {
            self.on_feedback(f);
        }
        self.update_status();
        self.report_view()?;
        Ok(())
    }

    fn report_view(&mut self) -> Result<(), NodeError> {
        let Some(obs) = self.observer.clone() else {
            return Ok(());
        };
        let was_leader = self.view.is_leader && self.view.term == self.raw.raft.term;
        let mut v = std::mem::take(&mut self.view);
        v.member = self.cfg.id;
        v.term = self.raw.raft.term;
        v.vote = self.raw.raft.vote;
        v.leader = self.leader_id();
        v.is_leader = self.is_leader();
        v.commit = self.raw.raft.raft_log.committed;
        v.first_index = raft::Storage::first_index(&self.store)?;
        v.last_index = raft::Storage::last_index(&self.store)?;
        v.commit_term = raft::Storage::term(&self.store, v.commit).unwrap_or(0);
        v.last_term = raft::Storage::term(&self.store, v.last_index)?;
        v.leader_log = None;
        if v.is_leader && !was_leader {
            let mut log = Vec::new();
            for i in v.first_index..=v.last_index {
                log.push((i, raft::Storage::term(&self.store, i)?));
            }
            v.leader_log = Some(log);
        }
        obs.observe(&v);
        v.applied.clear();
        self.view = v;
        Ok(())
    }

    fn on_role(&mut self, role: StateRole) {
        if role == StateRole::Leader && !self.lessor.is_active() {
            let leases = self.shared.state.read().expect("state lock").mvcc.leases();
            let now = self.now_ms();
            let min_ttl = self.min_lease_ttl_secs();
            self.lessor.promote(&leases, now, min_ttl);
        } else if role != StateRole::Leader && self.lessor.is_active() {
            self.lessor.demote();
        }
    }

    fn update_status(&self) {
        let mut s = self.shared.status.lock().expect("status lock");
        s.leader = self.leader_id();
        s.term = self.raw.raft.term;
        s.commit = self.raw.raft.raft_log.committed;
        s.applied = self.raw.raft.raft_log.applied;
        s.is_leader = self.is_leader();
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        if entries.is_empty() {
            return Ok(());
        }
        let term = self.raw.raft.term;
        for e in entries {
            if self.observer.is_some() {
                self.view
                    .applied
                    .push((e.index, e.term, crc32fast::hash(&e.data)));
            }
            self.buggify(sites::BEFORE_APPLY)?;
            match e.get_entry_type() {
                EntryType::EntryNormal => {
                    self.apply_normal(&e, term)?;
                    if self.bug(PlantedBug::ApplyTwiceAfterRestart)
                        && self.apply_twice_pending
                        && !e.data.is_empty()
                    {
                        self.apply_twice_pending = false;
                        self.apply_normal(&e, term)?;
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(&e)?
                }
            }
            {
                let mut st = self.shared.state.write().expect("state lock");
                assert!(
                    e.index > st.applied_index || e.index == 0,
                    "entry applied twice"
                );
                st.applied_index = e.index;
            }
            self.buggify(sites::AFTER_APPLY)?;
        }
        Ok(())
    }

    fn apply_normal(&mut self, e: &Entry, term: u64) -> Result<(), NodeError> {
        if e.data.is_empty() {
            return Ok(()); // a new leader's empty entry
        }
        let req = match InternalRequest::decode(e.data.as_ref()) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(index = e.index, error = %err, "undecodable log entry skipped");
                return Ok(());
            }
        };
        if matches!(req.request, Some(internal_request::Request::Compaction(_))) {
            self.buggify(sites::DURING_COMPACTION)?;
        }
        let now = self.now_ms();
        let min_ttl = self.min_lease_ttl_secs();
        let outcome = {
            let mut st = self.shared.state.write().expect("state lock");
            let header = self.shared.header(st.mvcc.current_revision(), term);
            apply::apply(&mut st, &req, &header, &mut self.lessor, now, min_ttl)
        };
        if let Some(w) = self.waiters.remove(&req.id) {
            let _ = w.reply.send(Ok(outcome));
        }
        Ok(())
    }

    fn apply_conf_change(&mut self, e: &Entry) -> Result<(), NodeError> {
        use protobuf::Message as _;
        let cs = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            let cc = ConfChangeV2::parse_from_bytes(&e.data)
                .map_err(|err| raft::Error::ConfChangeError(err.to_string()))?;
            self.raw.apply_conf_change(&cc)?
        } else {
            let cc = ConfChange::parse_from_bytes(&e.data)
                .map_err(|err| raft::Error::ConfChangeError(err.to_string()))?;
            self.raw.apply_conf_change(&cc)?
        };
        self.store.mem.wl().set_conf_state(cs);
        Ok(())
    }

    fn after_apply(&mut self) -> Result<(), NodeError> {
        let applied = self.shared.state.read().expect("state lock").applied_index;
        let mut still = Vec::new();
        for (index, readers) in std::mem::take(&mut self.reads.ready) {
            if index <= applied {
                for r in readers {
                    let _ = r.send(Ok(()));
                }
            } else {
                still.push((index, readers));
            }
        }
        self.reads.ready = still;
        {
            let mut st = self.shared.state.write().expect("state lock");
            if st.watch.has_unsynced() {
                let header = self
                    .shared
                    .header(st.mvcc.current_revision(), self.raw.raft.term);
                let st = &mut *st;
                st.watch.catch_up(&st.mvcc, &header);
            }
        }
        if applied >= self.last_snapshot_index + self.cfg.snapshot_count {
            self.take_snapshot()?;
        }
        Ok(())
    }

    fn take_snapshot(&mut self) -> Result<(), NodeError> {
        let (data, applied) = {
            let st = self.shared.state.read().expect("state lock");
            (apply::encode_state(&st), st.applied_index)
        };
        if applied == 0 || applied == self.last_snapshot_index {
            return Ok(());
        }
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = applied;
        meta.term = raft::Storage::term(&self.store, applied)?;
        meta.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        self.buggify(sites::BEFORE_SNAPSHOT_SAVE)?;
        self.persist.save_snapshot(&self.store, &snap)?;
        self.buggify(sites::AFTER_SNAPSHOT_SAVE)?;
        let compact_to = applied.saturating_sub(self.cfg.catchup_entries);
        if compact_to > 0 {
            self.store.mem.wl().compact(compact_to)?;
        }
        self.last_snapshot_index = applied;
        tracing::info!(index = applied, "saved snapshot");
        Ok(())
    }

    fn install_snapshot(&mut self, snap: Snapshot) -> Result<(), NodeError> {
        let index = snap.get_metadata().index;
        self.buggify(sites::BEFORE_SNAPSHOT_APPLY)?;
        {
            let mut st = self.shared.state.write().expect("state lock");
            apply::restore_state(&mut st, &snap.data)
                .map_err(|e| RaftStoreError::Corrupt(format!("snapshot data: {e}")))?;
            assert_eq!(
                st.applied_index, index,
                "snapshot data and metadata disagree"
            );
            st.watch.mark_all_unsynced();
        }
        self.store.mem.wl().apply_snapshot(snap.clone())?;
        self.persist.save_snapshot(&self.store, &snap)?;
        self.last_snapshot_index = index;
        tracing::info!(index, "installed snapshot from leader");
        self.buggify(sites::AFTER_SNAPSHOT_APPLY)?;
        Ok(())
    }

    fn fail_all(&mut self, err: StoreError) {
        for (_, w) in std::mem::take(&mut self.waiters) {
            let _ = w.reply.send(Err(err.clone()));
        }
        let q = std::mem::take(&mut self.reads);
        let all = q
            .pending
            .into_iter()
            .chain(q.in_flight.into_iter().flat_map(|(_, _, r)| r))
            .chain(q.ready.into_iter().flat_map(|(_, r)| r));
        for r in all {
            let _ = r.send(Err(err.clone()));
        }
    }
}
