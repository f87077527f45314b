//! An executable, model-checked abstraction of the store's replication protocol (Raft).
//!
//! This is a model of Raft's safety-relevant rules (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", 2014), not a copy of raft-rs. [`check`] explores every
//! state within [`Bounds`] breadth-first with stateright and reports counterexamples.
//!
//! # What it models
//!
//! `N` servers (3 in the checked configuration), each with the durable `currentTerm`, `votedFor`
//! and log of `(term, value)` entries, and the volatile role (Follower/Candidate/Leader),
//! `commitIndex`, the candidate's received votes and the leader's `matchIndex`. The steps:
//!
//! - **timeout**: a follower or candidate starts an election: term + 1, votes for itself, and
//!   broadcasts RequestVote with its last log index and term;
//! - **RequestVote**: a server that sees a newer term adopts it; it grants at most one vote per
//!   term, and only to a candidate whose log is at least as up to date as its own (§5.4.1); a
//!   candidate with a majority becomes leader;
//! - **client request**: a leader appends `(currentTerm, v)`, `v` one of `values`;
//! - **AppendEntries**: the receiver adopts a newer term (a candidate of the same term steps
//!   down), rejects unless it has an entry at `prevLogIndex` with `prevLogTerm`, truncates only
//!   at the first *conflicting* entry, appends, sets `commitIndex` to
//!   `min(leaderCommit, index of last new entry)` if larger, and acknowledges with its match
//!   index;
//! - **commit**: on an acknowledgement the leader advances `commitIndex` to the largest index a
//!   majority stores *whose entry is from the leader's current term* (§5.4.2);
//! - **crash/restart** of any server, atomic: it keeps `currentTerm`, `votedFor` and its log and
//!   loses its role, `commitIndex`, votes and `matchIndex`;
//! - the network loses, duplicates, delays and reorders every message (below).
//!
//! # Why a plain [`Model`] and not the actor framework
//!
//! Owning the state gives exact control over what a restart keeps (the durable state, which
//! planted bug 1 changes), over the bounds, over the ghost variables the properties need, and
//! over how messages are represented, which is where the state space is won or lost:
//!
//! - **RequestVote** messages sit in a set of messages sent, and delivery does not consume them:
//!   any message can be delivered any number of times, in any order, or never, which is loss,
//!   duplication and reordering at once, with no separate fault steps.
//! - **AppendEntries** are not stored one by one. A leader's log and commit index only grow while
//!   it is in office, so every message it has sent so far is a slice of its *current* log with
//!   `leaderCommit` at most its current commit index. The model delivers any slice
//!   `log[prev..prev + len]` of a leader's current log to any server, at any time; when the
//!   leader leaves office (steps down or crashes) its log and commit index are frozen in a
//!   [`Leadership`] and its messages stay deliverable. This covers every AppendEntries a leader
//!   could have sent (raft-rs sends a subset: the suffix after `nextIndex`, so `nextIndex` is not
//!   modelled). `leaderCommit` is always the leader's latest commit index (see below).
//! - **Replies** travel with the request. An acknowledgement always reaches its leader at once;
//!   a granted vote reaches its candidate at once or is lost. Both are complete for safety: a
//!   leader's `matchIndex` and `commitIndex`, and a follower's `commitIndex`, only feed commit
//!   decisions, and learning of commits earlier or more never removes a ghost record, so any
//!   violation reachable with a late or lost acknowledgement is reachable with a prompt one. A
//!   late vote is equivalent to a prompt one unless the candidate times out first, which is the
//!   lost vote. Rejections are never sent (the same as losing them), and a message with a stale
//!   term is ignored rather than answered with the newer term; terms still spread through every
//!   request and through timeouts.
//!
//! # Other abstractions
//!
//! Leaders never time out (basic Raft; a leader that stops leading is modelled by a crash). No
//! pre-vote, check-quorum, leases, no-op entry on election, snapshots, membership changes, or
//! flow control; the state machine is the committed log itself.
//!
//! # Reductions (none removes a behaviour that matters for the properties)
//!
//! - *Dead messages are dropped*: a message whose delivery can never again change anything
//!   (every possible receiver is in a later term, or has already voted in that term). Terms
//!   never decrease, so this is permanent.
//! - *Symmetry*: servers are interchangeable, so after each step the servers are relabelled in a
//!   canonical order ([`Bounds::symmetry`]); about 5× fewer states. Counterexamples are
//!   translated back to fixed server ids ([`RaftModel::unreduced`]).
//! - *Election records* (ghost) are dropped once no rival can win that term any more.
//! - A crash that would lose nothing is not a step (it would only spend the crash budget).
//!
//! # Bounds and size ([`Bounds::default`], what CI checks)
//!
//! 3 servers, terms up to 4, logs up to 2 entries, 1 client value, 1 crash, at most 8 messages in
//! flight (which never binds at these bounds). Breadth-first search visits 921,839 unique states
//! (13.3 million generated, depth 24) in 12–32 s in release mode on one thread of a shared
//! 2-core machine (the spread is other builds' load). Four terms is the least in which the Figure 8 anomaly can happen with three
//! servers (an entry of term 1 committed in term 3 and lost to the leader of term 4), and the
//! negative control shows these bounds reach it. One value is enough for the correct protocol:
//! with one leader per term that only appends, an entry is identified by its index and term, so
//! a second value only multiplies states (4.4 million with 2 values; logs of 3 entries give 5.6
//! million).
//!
//! # Properties (stateright `always`, over the state and ghost history)
//!
//! | name                   | paper          | checked as |
//! |------------------------|----------------|------------|
//! | `election safety`      | §5.2, Figure 3 | ghost set of `(term, server)` elections: no term twice |
//! | `leader append-only`   | §5.3, Figure 3 | a monitor flags a step after which a server that stays leader in the same term no longer extends its earlier log |
//! | `log matching`         | §5.3, Figure 3 | two logs with the same term at an index are identical up to it |
//! | `leader completeness`  | §5.4, Figure 3 | ghost set of commits `(index, entry, term of the deciding leader)`; each is in the log of every current leader of a later term |
//! | `state machine safety` | §5.4.3, Figure 3 | no two commit records (any server, any time, crashes included) differ at an index |
//!
//! and the `sometimes` properties that show the bounds are not vacuous: `a value is committed`,
//! `logs diverge` (conflicting entries arise), and `an earlier term's entry is committed` (the
//! indirect commit of §5.4.2).
//!
//! # Negative controls
//!
//! [`PlantedBug`] switches in a known bug, and the checker must find it: not persisting
//! `votedFor` (two leaders in one term, after a crash) and committing an earlier term's entry by
//! counting replicas (Figure 8: a later leader lacks a committed entry). Stateright 0.31's BFS
//! stops only at the end of a block of 1,500 states and keeps the last counterexample it met, so
//! a counterexample is short but not necessarily the shortest.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model, Property};

/// Index of a server, `0..servers`.
pub type ServerId = u8;
/// A Raft term; 0 is the initial term, in which no server is ever leader.
pub type Term = u8;
/// A client value, `1..=values`.
pub type Value = u8;

/// §5.2: at most one leader is elected in a term.
pub const ELECTION_SAFETY: &str = "election safety";
/// §5.3: a leader never overwrites or deletes entries in its log.
pub const LEADER_APPEND_ONLY: &str = "leader append-only";
/// §5.3: two logs with an entry of the same index and term are identical up to that index.
pub const LOG_MATCHING: &str = "log matching";
/// §5.4: an entry committed in a term is in the log of every leader of a later term.
pub const LEADER_COMPLETENESS: &str = "leader completeness";
/// §5.4.3: no two servers apply different entries at the same index.
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
/// The `always` properties.
pub const SAFETY_PROPERTIES: [&str; 5] = [
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
];
/// `sometimes`: some entry gets committed, so the bounds are not vacuous.
pub const VALUE_COMMITTED: &str = "a value is committed";
/// `sometimes`: two servers hold different entries at one index (conflicts do arise).
pub const LOGS_DIVERGE: &str = "logs diverge";
/// `sometimes`: an entry is committed by a leader of a later term than the entry's (§5.4.2's
/// indirect commit).
pub const EARLIER_TERM_COMMITTED: &str = "an earlier term's entry is committed";
/// The `sometimes` properties: the checker must find an example of each.
pub const REACHABILITY_PROPERTIES: [&str; 3] =
    [VALUE_COMMITTED, LOGS_DIVERGE, EARLIER_TERM_COMMITTED];

/// Most servers [`Bounds::servers`] may ask for (states are fixed-size, for speed).
pub const MAX_SERVERS: usize = 5;
/// Longest log [`Bounds::max_log_len`] may ask for.
pub const MAX_LOG_LEN: usize = 4;
/// Capacity of the state's sets of requests, retired leaderships and election records;
/// [`Bounds::validate`] checks that the bounds cannot overflow it.
pub const SET_CAPACITY: usize = 16;
/// Capacity of the set of commit records.
pub const COMMITTED_CAPACITY: usize = 32;

/// The limits of the explored state space. `Default` is the configuration CI checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Number of servers.
    pub servers: usize,
    /// No server times out beyond this term.
    pub max_term: Term,
    /// A leader accepts no client request once its log has this many entries.
    pub max_log_len: usize,
    /// Number of distinct client values.
    pub values: Value,
    /// Total crash/restarts across all servers.
    pub max_crashes: u8,
    /// States with more messages in flight (RequestVotes plus retired leaderships) are not
    /// explored.
    pub max_messages: usize,
    /// Relabel servers into a canonical order after each step (symmetry reduction). Paths in a
    /// [`Report`] use fixed server ids either way.
    pub symmetry: bool,
    /// Checker threads.
    pub threads: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            servers: 3,
            max_term: 4,
            max_log_len: 2,
            values: 1,
            max_crashes: 1,
            max_messages: 8,
            symmetry: true,
            threads: 1,
        }
    }
}

impl Bounds {
    /// Panics unless the fixed-size state can represent every state these bounds reach.
    pub fn validate(&self) {
        assert!(
            (1..=MAX_SERVERS).contains(&self.servers),
            "servers: 1..={MAX_SERVERS}"
        );
        assert!(
            self.max_log_len <= MAX_LOG_LEN,
            "max_log_len: at most {MAX_LOG_LEN}"
        );
        assert!(
            self.values >= 1 && self.max_term < 16,
            "values >= 1, max_term < 16"
        );
        let per_term = self.max_term as usize * self.servers;
        let entries = self.max_log_len * self.max_term as usize * self.values as usize;
        assert!(
            per_term <= SET_CAPACITY && entries <= COMMITTED_CAPACITY,
            "max_term * servers must be <= {SET_CAPACITY}, \
             max_log_len * max_term * values <= {COMMITTED_CAPACITY}"
        );
    }
}

/// A known-wrong variant of the protocol, for negative controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// `votedFor` is not persisted: a restart forgets it, so a server can vote twice in a term.
    VotedForNotPersisted,
    /// A leader commits any entry a majority stores, even one from an earlier term (Figure 8).
    CommitEarlierTermByCounting,
}

/// A log entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Term of the leader that appended it.
    pub term: Term,
    /// The client value.
    pub value: Value,
}

/// A sequence of at most `CAP` items stored inline (no allocation, so states clone and hash
/// fast). Slots past the length always hold `T::default()`. Used as a log and, kept sorted and
/// free of duplicates, as a set.
#[derive(Clone, Copy)]
pub struct Inline<T, const CAP: usize> {
    len: u8,
    slots: [T; CAP],
}

/// A log of at most [`MAX_LOG_LEN`] entries; index `i` in Raft's 1-based terms is `log[i - 1]`.
pub type Log = Inline<Entry, MAX_LOG_LEN>;
/// A sorted set of at most [`SET_CAPACITY`] items.
pub type Set<T> = Inline<T, SET_CAPACITY>;

impl<T: Copy + Default, const CAP: usize> Default for Inline<T, CAP> {
    fn default() -> Self {
        Inline {
            len: 0,
            slots: [T::default(); CAP],
        }
    }
}

impl<T: Copy + Default, const CAP: usize> Inline<T, CAP> {
    fn push(&mut self, item: T) {
        assert!((self.len as usize) < CAP, "inline capacity {CAP} exceeded");
        self.slots[self.len as usize] = item;
        self.len += 1;
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.slots[len..].fill(T::default());
            self.len = len as u8;
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = 0;
        for i in 0..self.len as usize {
            if keep(&self.slots[i]) {
                self.slots[kept] = self.slots[i];
                kept += 1;
            }
        }
        self.truncate(kept);
    }
}

impl<T: Copy + Default + Ord, const CAP: usize> Inline<T, CAP> {
    /// Set insertion: keeps the items sorted and distinct.
    fn insert(&mut self, item: T) {
        if let Err(at) = self.binary_search(&item) {
            self.push(item);
            self.slots[at..self.len as usize].rotate_right(1);
        }
    }
}

impl<T: Copy + Default + Ord, const CAP: usize> FromIterator<T> for Inline<T, CAP> {
    /// Collects into a set.
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut set = Self::default();
        for item in items {
            set.insert(item);
        }
        set
    }
}

impl<T, const CAP: usize> Deref for Inline<T, CAP> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.slots[..self.len as usize]
    }
}

impl<T, const CAP: usize> DerefMut for Inline<T, CAP> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.slots[..self.len as usize]
    }
}

impl<T: PartialEq, const CAP: usize> PartialEq for Inline<T, CAP> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl<T: Eq, const CAP: usize> Eq for Inline<T, CAP> {}

impl<T: PartialOrd, const CAP: usize> PartialOrd for Inline<T, CAP> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self[..].partial_cmp(&other[..])
    }
}

impl<T: Ord, const CAP: usize> Ord for Inline<T, CAP> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self[..].cmp(&other[..])
    }
}

impl<T: Hash, const CAP: usize> Hash for Inline<T, CAP> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
}

impl<T: fmt::Debug, const CAP: usize> fmt::Debug for Inline<T, CAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A server's volatile role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follower.
    #[default]
    Follower,
    /// Candidate, with the bitmask of servers whose vote it has received (itself included).
    Candidate {
        /// Bit `i` set: server `i`'s vote for this candidate arrived.
        votes: u8,
    },
    /// Leader, with the highest log index known to be replicated on each server.
    Leader {
        /// Indexed by server; the leader's own slot is unused (its log length counts).
        match_index: [u8; MAX_SERVERS],
    },
}

/// One server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Server {
    /// Durable `currentTerm`.
    pub term: Term,
    /// Durable `votedFor` (in `term`).
    pub voted_for: Option<ServerId>,
    /// Durable log.
    pub log: Log,
    /// Volatile role and leader/candidate state.
    pub role: Role,
    /// Volatile `commitIndex`: number of log entries known committed.
    pub commit: u8,
}

impl Server {
    fn last_term(&self) -> Term {
        self.log.last().map_or(0, |e| e.term)
    }

    fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    fn is_candidate(&self) -> bool {
        matches!(self.role, Role::Candidate { .. })
    }

    /// Adopts a newer term: forget the vote, become a follower.
    fn step_down(&mut self, term: Term) {
        self.term = term;
        self.voted_for = None;
        self.role = Role::Follower;
    }
}

/// RequestVote, broadcast by a candidate: any other server may receive it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestVote {
    /// The candidate's term.
    pub term: Term,
    /// The candidate.
    pub candidate: ServerId,
    /// `lastLogIndex`.
    pub last_index: u8,
    /// `lastLogTerm`.
    pub last_term: Term,
}

/// Everything the AppendEntries of one leader in one term can carry: any slice of `log` (with
/// the matching `prevLogIndex`/`prevLogTerm`) and `leaderCommit = commit`. A leader's log and
/// commit index only grow while it is in office, so the latest values cover every message it
/// sent (see the module docs). While the leader is in office they are read from the leader
/// itself; when it leaves office they are frozen in a `Leadership`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Leadership {
    /// The leader's term.
    pub term: Term,
    /// The leader.
    pub leader: ServerId,
    /// Its log when it left office.
    pub log: Log,
    /// Its commit index when it left office.
    pub commit: u8,
}

/// Ghost record: `entry` at `index` was committed by the leader of `term`, or applied by a server
/// that learned the commit from that leader. Only the earliest such term is kept per
/// `(index, entry)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Committed {
    /// 1-based log index.
    pub index: u8,
    /// The committed entry.
    pub entry: Entry,
    /// Term of the leader whose decision committed it.
    pub term: Term,
}

/// The whole system plus ghost history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The servers, indexed by [`ServerId`].
    pub servers: Inline<Server, MAX_SERVERS>,
    /// RequestVotes that may still be delivered.
    pub requests: Set<RequestVote>,
    /// AppendEntries still deliverable from leaders no longer in office.
    pub retired: Set<Leadership>,
    /// Crash/restarts so far.
    pub crashes: u8,
    /// Ghost: `(term, server)` elections, kept while a rival could still win that term.
    pub elections: Set<(Term, ServerId)>,
    /// Ghost: every entry any server ever committed.
    pub committed: Inline<Committed, COMMITTED_CAPACITY>,
    /// Ghost monitor: some step shrank or rewrote the log of a server that stayed leader.
    pub append_only_violated: bool,
}

/// One AppendEntries: the slice `log[prev_index..prev_index + len]` of the leader of `term`,
/// with `prevLogTerm` taken from its log and `leaderCommit` its commit index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendEntries {
    /// The sender's term.
    pub term: Term,
    /// The sender.
    pub leader: ServerId,
    /// `prevLogIndex`.
    pub prev_index: u8,
    /// Number of entries carried.
    pub len: u8,
}

/// A step of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Election timeout of a follower or candidate: start an election in the next term.
    Timeout(ServerId),
    /// A client request reaches a leader.
    ClientRequest { leader: ServerId, value: Value },
    /// The network delivers a RequestVote to `to`; if `to` grants its vote, the grant reaches
    /// the candidate (`vote_arrives`) or is lost.
    RequestVote {
        to: ServerId,
        msg: RequestVote,
        vote_arrives: bool,
    },
    /// The network delivers an AppendEntries to `to`, and its acknowledgement back.
    Append { to: ServerId, msg: AppendEntries },
    /// A server crashes and restarts.
    Crash(ServerId),
}

/// The model: the protocol under `bounds`, optionally with a planted bug.
#[derive(Clone, Debug)]
pub struct RaftModel {
    /// The explored state space's limits.
    pub bounds: Bounds,
    /// `None` for the correct protocol.
    pub bug: Option<PlantedBug>,
}

impl RaftModel {
    /// The model of the correct protocol.
    pub fn new(bounds: Bounds) -> Self {
        bounds.validate();
        RaftModel { bounds, bug: None }
    }

    /// The model with `bug` planted.
    pub fn with_bug(bounds: Bounds, bug: PlantedBug) -> Self {
        bounds.validate();
        RaftModel {
            bounds,
            bug: Some(bug),
        }
    }

    fn majority(&self, count: u32) -> bool {
        count as usize * 2 > self.bounds.servers
    }

    fn ids(&self) -> impl Iterator<Item = ServerId> {
        0..self.bounds.servers as ServerId
    }

    /// Whether a server other than `from` still has a term at or below `term`. Terms never
    /// decrease, so once this is false every message of `term` from `from` is dead.
    fn anyone_at_or_below(servers: &[Server], from: ServerId, term: Term) -> bool {
        (0..servers.len()).any(|i| i != from as usize && servers[i].term <= term)
    }

    /// Whether delivering `rv` could still change anything, now or later. A server that has voted
    /// in a term never votes for anyone else in it (unless the planted bug makes it forget), and a
    /// repeated grant to the same candidate adds nothing: had the first grant arrived at once, the
    /// candidate would have been an idle leader until the repeat.
    fn is_live(&self, servers: &[Server], rv: &RequestVote) -> bool {
        let forgets = self.bug == Some(PlantedBug::VotedForNotPersisted);
        servers.iter().enumerate().any(|(i, r)| {
            i != rv.candidate as usize
                && (r.term < rv.term || (r.term == rv.term && (forgets || r.voted_for.is_none())))
        })
    }

    /// The log and commit index behind the AppendEntries of `(term, leader)`, live or retired.
    fn source(state: &State, term: Term, leader: ServerId) -> Option<(Log, u8)> {
        let s = &state.servers[leader as usize];
        if s.is_leader() && s.term == term {
            return Some((s.log, s.commit));
        }
        state
            .retired
            .iter()
            .find(|l| l.term == term && l.leader == leader)
            .map(|l| (l.log, l.commit))
    }

    /// Every AppendEntries that `(term, leader)` could have sent, to every server that would not
    /// ignore it for its stale term.
    fn append_actions(&self, state: &State, term: Term, leader: ServerId, out: &mut Vec<Action>) {
        let Some((log, _)) = Self::source(state, term, leader) else {
            return;
        };
        let len = log.len() as u8;
        for to in self.ids() {
            if to == leader || state.servers[to as usize].term > term {
                continue;
            }
            for prev_index in 0..=len {
                for n in 0..=len - prev_index {
                    let msg = AppendEntries {
                        term,
                        leader,
                        prev_index,
                        len: n,
                    };
                    out.push(Action::Append { to, msg });
                }
            }
        }
    }

    /// Whether `r` grants `rv`: one vote per term (§5.2), only to a candidate whose log is at
    /// least as up to date (§5.4.1).
    fn grants(r: &Server, rv: &RequestVote) -> bool {
        let up_to_date = rv.last_term > r.last_term()
            || (rv.last_term == r.last_term() && rv.last_index as usize >= r.log.len());
        let free = rv.term > r.term || r.voted_for.is_none_or(|v| v == rv.candidate);
        rv.term >= r.term && free && up_to_date
    }

    fn timeout(state: &mut State, id: ServerId) {
        let s = &mut state.servers[id as usize];
        s.term += 1;
        s.voted_for = Some(id);
        s.role = Role::Candidate { votes: 1 << id };
        let rv = RequestVote {
            term: s.term,
            candidate: id,
            last_index: s.log.len() as u8,
            last_term: s.last_term(),
        };
        state.requests.insert(rv);
    }

    /// Restart: durable state survives, volatile state is lost.
    fn crash(&self, state: &mut State, id: ServerId) {
        let s = &mut state.servers[id as usize];
        s.role = Role::Follower;
        s.commit = 0;
        if self.bug == Some(PlantedBug::VotedForNotPersisted) {
            s.voted_for = None;
        }
        state.crashes += 1;
    }

    fn on_request_vote(&self, state: &mut State, to: ServerId, rv: RequestVote, arrives: bool) {
        let r = &mut state.servers[to as usize];
        if rv.term < r.term {
            return;
        }
        let granted = Self::grants(r, &rv);
        if rv.term > r.term {
            r.step_down(rv.term);
        }
        if granted {
            r.voted_for = Some(rv.candidate);
            if arrives {
                self.on_vote(state, rv.candidate, rv.term, to);
            }
        }
    }

    fn on_vote(&self, state: &mut State, to: ServerId, term: Term, from: ServerId) {
        let c = &mut state.servers[to as usize];
        let Role::Candidate { votes } = c.role else {
            return;
        };
        if c.term != term {
            return;
        }
        let votes = votes | (1 << from);
        if self.majority(votes.count_ones()) {
            c.role = Role::Leader {
                match_index: [0; MAX_SERVERS],
            };
            state.elections.insert((term, to));
        } else {
            c.role = Role::Candidate { votes };
        }
    }
}

impl RaftModel {
    /// AppendEntries receiver (Figure 2): consistency check, truncate only on conflict, append,
    /// advance the commit index, acknowledge.
    fn on_append(&self, state: &mut State, to: ServerId, msg: AppendEntries) {
        let Some((log, commit)) = Self::source(state, msg.term, msg.leader) else {
            return;
        };
        let prev = msg.prev_index as usize;
        let prev_term = if prev == 0 { 0 } else { log[prev - 1].term };
        let r = &mut state.servers[to as usize];
        if msg.term < r.term || (msg.term == r.term && r.is_leader()) {
            return;
        }
        if msg.term > r.term {
            r.step_down(msg.term);
        }
        r.role = Role::Follower;
        if prev > r.log.len() || (prev > 0 && r.log[prev - 1].term != prev_term) {
            return;
        }
        for (at, &entry) in log.iter().enumerate().skip(prev).take(msg.len as usize) {
            match r.log.get(at) {
                Some(mine) if mine.term == entry.term => {}
                Some(_) => {
                    r.log.truncate(at);
                    r.log.push(entry);
                }
                None => r.log.push(entry),
            }
        }
        let last_new = msg.prev_index + msg.len;
        let new_commit = commit.min(last_new);
        if new_commit > r.commit {
            let old = r.commit;
            r.commit = new_commit;
            record_commits(state, to, old, msg.term);
        }
        self.on_append_ok(state, msg.leader, msg.term, to, last_new);
    }

    fn on_append_ok(&self, state: &mut State, to: ServerId, term: Term, from: ServerId, index: u8) {
        let l = &mut state.servers[to as usize];
        if l.term != term {
            return;
        }
        let Role::Leader { match_index } = &mut l.role else {
            return;
        };
        if match_index[from as usize] >= index {
            return;
        }
        match_index[from as usize] = index;
        self.advance_commit(state, to);
    }

    /// Commit the largest index stored on a majority whose entry is from the leader's current
    /// term (§5.3, §5.4.2); the planted Figure 8 bug drops the term condition.
    fn advance_commit(&self, state: &mut State, id: ServerId) {
        let l = &state.servers[id as usize];
        let Role::Leader { match_index } = l.role else {
            return;
        };
        let any_term = self.bug == Some(PlantedBug::CommitEarlierTermByCounting);
        let target = (l.commit as usize + 1..=l.log.len()).rev().find(|&n| {
            let replicas = self
                .ids()
                .filter(|&j| j == id || match_index[j as usize] as usize >= n)
                .count();
            self.majority(replicas as u32) && (any_term || l.log[n - 1].term == l.term)
        });
        if let Some(n) = target {
            let (old, term) = (l.commit, l.term);
            state.servers[id as usize].commit = n as u8;
            record_commits(state, id, old, term);
        }
    }

    fn apply(&self, state: &mut State, action: Action) {
        match action {
            Action::Timeout(id) => Self::timeout(state, id),
            Action::ClientRequest { leader, value } => {
                let s = &mut state.servers[leader as usize];
                let term = s.term;
                s.log.push(Entry { term, value });
            }
            Action::Crash(id) => self.crash(state, id),
            Action::RequestVote {
                to,
                msg,
                vote_arrives,
            } => self.on_request_vote(state, to, msg, vote_arrives),
            Action::Append { to, msg } => self.on_append(state, to, msg),
        }
    }

    /// Bookkeeping after the step `last` → `next`: freezes the AppendEntries of leaders that
    /// left office, and drops messages, leaderships and election records that can no longer
    /// affect anything.
    fn settle(&self, last: &State, next: &mut State) {
        for (id, (was, now)) in last.servers.iter().zip(next.servers.iter()).enumerate() {
            if was.is_leader() && !(now.is_leader() && now.term == was.term) {
                next.retired.insert(Leadership {
                    term: was.term,
                    leader: id as ServerId,
                    log: was.log,
                    commit: was.commit,
                });
            }
        }
        // An election record matters while a rival could still win that term. It is dropped one
        // step late (only if already dead in `last`), so the state in which a second leader is
        // elected still holds the first one's record.
        let rival_possible = |&(term, leader): &(Term, ServerId)| {
            last.servers.iter().enumerate().any(|(i, r)| {
                i != leader as usize && (r.term < term || (r.term == term && r.is_candidate()))
            })
        };
        next.elections
            .retain(|e| !last.elections.contains(e) || rival_possible(e));
        let servers = &next.servers;
        next.requests.retain(|rv| self.is_live(servers, rv));
        next.retired
            .retain(|l| Self::anyone_at_or_below(servers, l.leader, l.term));
    }
}

/// Ghost bookkeeping: server `id` just advanced its commit index from `old`, on the authority of
/// the leader of `term`.
fn record_commits(state: &mut State, id: ServerId, old: u8, term: Term) {
    let s = state.servers[id as usize];
    for index in old + 1..=s.commit {
        let entry = s.log[index as usize - 1];
        let earlier = state
            .committed
            .iter()
            .find(|c| c.index == index && c.entry == entry)
            .copied();
        if earlier.is_some_and(|c| c.term <= term) {
            continue;
        }
        state.committed.retain(|c| Some(*c) != earlier);
        state.committed.insert(Committed { index, entry, term });
    }
}

/// Whether some server that was leader in `before` and still is, in the same term, in `after`
/// no longer has its earlier log as a prefix.
fn leader_log_rewritten(before: &State, after: &State) -> bool {
    before
        .servers
        .iter()
        .zip(after.servers.iter())
        .any(|(b, a)| {
            b.is_leader() && a.is_leader() && b.term == a.term && !a.log.starts_with(&b.log)
        })
}

impl RaftModel {
    /// The actions enabled in `state`.
    fn enabled(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        for (id, s) in self.ids().zip(state.servers.iter()) {
            if s.is_leader() {
                if s.log.len() < b.max_log_len {
                    actions.extend(
                        (1..=b.values).map(|value| Action::ClientRequest { leader: id, value }),
                    );
                }
                self.append_actions(state, s.term, id, actions);
            } else if s.term < b.max_term {
                actions.push(Action::Timeout(id));
            }
            if state.crashes < b.max_crashes {
                actions.push(Action::Crash(id));
            }
        }
        for l in state.retired.iter() {
            self.append_actions(state, l.term, l.leader, actions);
        }
        for &msg in state.requests.iter() {
            for to in self.ids().filter(|&i| i != msg.candidate) {
                let granted = Self::grants(&state.servers[to as usize], &msg);
                for vote_arrives in [true, false].into_iter().take(1 + granted as usize) {
                    actions.push(Action::RequestVote {
                        to,
                        msg,
                        vote_arrives,
                    });
                }
            }
        }
    }

    /// One step, without symmetry reduction; `None` if it changes nothing.
    fn step(&self, last: &State, action: Action) -> Option<State> {
        let mut next = *last;
        self.apply(&mut next, action);
        if let Action::Crash(id) = action {
            // A restart that loses nothing only spends the crash budget.
            if next.servers[id as usize] == last.servers[id as usize] {
                return None;
            }
        }
        self.settle(last, &mut next);
        if leader_log_rewritten(last, &next) {
            next.append_only_violated = true;
        }
        (next != *last).then_some(next)
    }

    /// Rewrites a path found under symmetry reduction, whose every step may relabel the servers,
    /// into the same run with fixed server ids.
    pub fn unreduced(&self, path: &[Action]) -> Vec<Action> {
        let mut state = self.init_states()[0];
        let mut to_fixed = IDENTITY;
        let mut fixed = Vec::with_capacity(path.len());
        for &action in path {
            fixed.push(relabel_action(action, &to_fixed));
            let next = self
                .step(&state, action)
                .expect("a discovered path replays");
            let (next, perm) = if self.bounds.symmetry {
                canonical(next)
            } else {
                (next, IDENTITY)
            };
            let mut relabelled = to_fixed;
            for i in 0..self.bounds.servers {
                relabelled[perm[i] as usize] = to_fixed[i];
            }
            (state, to_fixed) = (next, relabelled);
        }
        fixed
    }
}

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut servers = Inline::default();
        for _ in 0..self.bounds.servers {
            servers.push(Server::default());
        }
        vec![State {
            servers,
            requests: Set::default(),
            retired: Set::default(),
            crashes: 0,
            elections: Set::default(),
            committed: Inline::default(),
            append_only_violated: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.enabled(state, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let next = self.step(last, action)?;
        Some(if self.bounds.symmetry {
            canonical(next).0
        } else {
            next
        })
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.requests.len() + state.retired.len() <= self.bounds.max_messages
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ELECTION_SAFETY, |_, s| election_safety(s)),
            Property::always(LEADER_APPEND_ONLY, |_, s: &State| !s.append_only_violated),
            Property::always(LOG_MATCHING, |_, s| log_matching(s)),
            Property::always(LEADER_COMPLETENESS, |_, s| leader_completeness(s)),
            Property::always(STATE_MACHINE_SAFETY, |_, s| state_machine_safety(s)),
            Property::sometimes(VALUE_COMMITTED, |_, s: &State| !s.committed.is_empty()),
            Property::sometimes(LOGS_DIVERGE, |_, s| logs_diverge(s)),
            Property::sometimes(EARLIER_TERM_COMMITTED, |_, s: &State| {
                s.committed.iter().any(|c| c.entry.term < c.term)
            }),
        ]
    }
}

/// The identity-free part of a server's state, by which [`canonical`] orders servers.
fn signature(s: &Server) -> (Term, &[Entry], u8, u8) {
    let role = match s.role {
        Role::Follower => 0,
        Role::Candidate { .. } => 1,
        Role::Leader { .. } => 2,
    };
    (s.term, &s.log, s.commit, role)
}

/// Symmetry reduction: servers are interchangeable, so relabelling them gives a state with the
/// same future and the same property values. Relabel so that servers appear sorted by
/// [`signature`] (ties keep their order), which maps many symmetric states to one. Returns the
/// relabelled state and the renaming (server `i` became `perm[i]`).
fn canonical(state: State) -> (State, [ServerId; MAX_SERVERS]) {
    let n = state.servers.len();
    let mut order = IDENTITY.map(usize::from);
    order[..n].sort_by(|&a, &b| signature(&state.servers[a]).cmp(&signature(&state.servers[b])));
    if order[..n].iter().enumerate().all(|(new, &old)| new == old) {
        return (state, IDENTITY);
    }
    let mut perm = IDENTITY;
    for (new, &old) in order[..n].iter().enumerate() {
        perm[old] = new as ServerId;
    }
    (relabel(&state, &perm[..n]), perm)
}

/// The renaming that changes nothing.
const IDENTITY: [ServerId; MAX_SERVERS] = [0, 1, 2, 3, 4];

/// `action` with server `i` renamed `perm[i]`.
fn relabel_action(action: Action, perm: &[ServerId]) -> Action {
    let id = |i: ServerId| perm[i as usize];
    match action {
        Action::Timeout(s) => Action::Timeout(id(s)),
        Action::Crash(s) => Action::Crash(id(s)),
        Action::ClientRequest { leader, value } => Action::ClientRequest {
            leader: id(leader),
            value,
        },
        Action::RequestVote {
            to,
            msg,
            vote_arrives,
        } => Action::RequestVote {
            to: id(to),
            msg: RequestVote {
                candidate: id(msg.candidate),
                ..msg
            },
            vote_arrives,
        },
        Action::Append { to, msg } => Action::Append {
            to: id(to),
            msg: AppendEntries {
                leader: id(msg.leader),
                ..msg
            },
        },
    }
}

/// `state` with server `i` renamed `perm[i]` everywhere.
fn relabel(state: &State, perm: &[ServerId]) -> State {
    let id = |i: ServerId| perm[i as usize];
    let mut next = *state;
    for (old, s) in state.servers.iter().enumerate() {
        let role = match s.role {
            Role::Follower => Role::Follower,
            Role::Candidate { votes } => Role::Candidate {
                votes: (0..perm.len())
                    .filter(|&i| votes & (1 << i) != 0)
                    .fold(0, |acc, i| acc | (1 << perm[i])),
            },
            Role::Leader { match_index } => {
                let mut relabelled = [0; MAX_SERVERS];
                for (j, &p) in perm.iter().enumerate() {
                    relabelled[p as usize] = match_index[j];
                }
                Role::Leader {
                    match_index: relabelled,
                }
            }
        };
        next.servers[perm[old] as usize] = Server {
            voted_for: s.voted_for.map(id),
            role,
            ..*s
        };
    }
    next.requests = state
        .requests
        .iter()
        .map(|&rv| RequestVote {
            candidate: id(rv.candidate),
            ..rv
        })
        .collect();
    next.retired = state
        .retired
        .iter()
        .map(|&l| Leadership {
            leader: id(l.leader),
            ..l
        })
        .collect();
    next.elections = state.elections.iter().map(|&(t, s)| (t, id(s))).collect();
    next
}

/// §5.2: no two election records share a term.
fn election_safety(state: &State) -> bool {
    state.elections.windows(2).all(|w| w[0].0 != w[1].0)
}

/// §5.3: if two logs hold an entry with the same index and term, they are identical up to it.
fn log_matching(state: &State) -> bool {
    let servers = &state.servers;
    servers.iter().enumerate().all(|(i, a)| {
        servers[i + 1..].iter().all(|b| {
            let (a, b) = (&a.log[..], &b.log[..]);
            (0..a.len().min(b.len()))
                .filter(|&k| a[k].term == b[k].term)
                .all(|k| a[..=k] == b[..=k])
        })
    })
}

/// §5.4: an entry committed in term `t` is in the log of every leader of a term after `t`.
fn leader_completeness(state: &State) -> bool {
    state.committed.iter().all(|c| {
        state
            .servers
            .iter()
            .filter(|s| s.is_leader() && s.term > c.term)
            .all(|s| s.log.get(c.index as usize - 1) == Some(&c.entry))
    })
}

/// Two servers hold different entries at the same index.
fn logs_diverge(state: &State) -> bool {
    let servers = &state.servers;
    servers.iter().enumerate().any(|(i, a)| {
        servers[i + 1..]
            .iter()
            .any(|b| a.log.iter().zip(b.log.iter()).any(|(x, y)| x != y))
    })
}

/// §5.4.3: no two servers ever commit different entries at the same index.
fn state_machine_safety(state: &State) -> bool {
    // Records are sorted by index, so any disagreement is between neighbours.
    state
        .committed
        .windows(2)
        .all(|w| w[0].index != w[1].index || w[0].entry == w[1].entry)
}

/// The outcome of a model-checking run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The bounds checked.
    pub bounds: Bounds,
    /// The planted bug, if any.
    pub bug: Option<PlantedBug>,
    /// Distinct states visited.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub total_states: usize,
    /// Longest path explored.
    pub max_depth: usize,
    /// Wall-clock checking time.
    pub elapsed: Duration,
    /// Property name → the actions, with fixed server ids, of the first path found that
    /// violates it (`always`) or satisfies it (`sometimes`).
    pub discoveries: BTreeMap<&'static str, Vec<Action>>,
}

impl Report {
    /// The `always` properties that have a counterexample.
    pub fn violated(&self) -> Vec<&'static str> {
        SAFETY_PROPERTIES
            .into_iter()
            .filter(|p| self.discoveries.contains_key(p))
            .collect()
    }

    /// The `sometimes` properties without an example: the bounds are too small to show them.
    pub fn unreached(&self) -> Vec<&'static str> {
        REACHABILITY_PROPERTIES
            .into_iter()
            .filter(|p| !self.discoveries.contains_key(p))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bounds: {:?}, planted bug: {:?}", self.bounds, self.bug)?;
        writeln!(
            f,
            "{} unique states ({} generated), max depth {}, in {:.1?}",
            self.unique_states, self.total_states, self.max_depth, self.elapsed
        )?;
        for (name, actions) in &self.discoveries {
            writeln!(f, "{name}: found after {} steps", actions.len())?;
            for action in actions {
                writeln!(f, "    {action:?}")?;
            }
        }
        Ok(())
    }
}

/// Runs breadth-first search over `model`. The correct protocol is explored exhaustively; with a
/// planted bug, the search stops at the first counterexample.
pub fn run(model: RaftModel) -> (impl Checker<RaftModel>, Duration) {
    let threads = model.bounds.threads;
    let finish = if model.bug.is_some() {
        HasDiscoveries::AnyFailures
    } else {
        HasDiscoveries::All
    };
    let start = Instant::now();
    let checker = model
        .checker()
        .threads(threads)
        .finish_when(finish)
        .spawn_bfs()
        .join();
    (checker, start.elapsed())
}

/// Model-checks the protocol (with `bug` planted, if any) under `bounds`.
pub fn check(bounds: Bounds, bug: Option<PlantedBug>) -> Report {
    bounds.validate();
    let model = RaftModel {
        bounds: bounds.clone(),
        bug,
    };
    let (checker, elapsed) = run(model);
    Report {
        bounds,
        bug,
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        discoveries: checker
            .discoveries()
            .into_iter()
            .map(|(name, path)| (name, checker.model().unreduced(&path.into_actions())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fewer unique states than this means the bounds or the model lost part of the space (the
    /// default bounds reach 921,839).
    const MIN_UNIQUE_STATES: usize = 800_000;

    fn fixed_ids() -> Bounds {
        Bounds {
            symmetry: false,
            ..Bounds::default()
        }
    }

    fn holds(model: &RaftModel, property: &'static str, state: &State) -> bool {
        (model.property(property).condition)(model, state)
    }

    /// Applies `actions` from the initial state, checking that each is enabled and does something.
    fn replay(model: &RaftModel, actions: &[Action]) -> State {
        let mut state = model.init_states()[0];
        for (step, &action) in actions.iter().enumerate() {
            let mut enabled = Vec::new();
            model.actions(&state, &mut enabled);
            assert!(
                enabled.contains(&action),
                "step {step}: {action:?} not enabled in {state:#?}"
            );
            state = model
                .next_state(&state, action)
                .unwrap_or_else(|| panic!("step {step}: {action:?} changed nothing"));
        }
        state
    }

    fn rv(term: Term, candidate: ServerId, last_index: u8, last_term: Term) -> RequestVote {
        RequestVote {
            term,
            candidate,
            last_index,
            last_term,
        }
    }

    fn deliver_rv(to: ServerId, msg: RequestVote) -> Action {
        Action::RequestVote {
            to,
            msg,
            vote_arrives: true,
        }
    }

    fn append(to: ServerId, term: Term, leader: ServerId, prev_index: u8, len: u8) -> Action {
        let msg = AppendEntries {
            term,
            leader,
            prev_index,
            len,
        };
        Action::Append { to, msg }
    }

    fn request(leader: ServerId) -> Action {
        Action::ClientRequest { leader, value: 1 }
    }

    /// Figure 8 with three servers: S0 leads term 1 and appends (1,1) alone; S2 leads term 2 and
    /// appends (2,1) alone; S0 leads term 3 and copies (1,1) to S1 (a majority); S2, whose last
    /// term 2 beats S1's 1, then wins term 4 without (1,1).
    fn figure_8() -> Vec<Action> {
        vec![
            Action::Timeout(0),
            deliver_rv(1, rv(1, 0, 0, 0)),
            request(0),
            Action::Timeout(2),
            Action::Timeout(2),
            deliver_rv(1, rv(2, 2, 0, 0)),
            request(2),
            deliver_rv(0, rv(2, 2, 0, 0)),
            Action::Timeout(0),
            deliver_rv(1, rv(3, 0, 1, 1)),
            append(1, 3, 0, 0, 1),
            deliver_rv(2, rv(3, 0, 1, 1)),
            Action::Timeout(2),
            deliver_rv(1, rv(4, 2, 1, 2)),
        ]
    }

    #[test]
    fn model_checks_all_safety_properties() {
        let (checker, elapsed) = run(RaftModel::new(Bounds::default()));
        println!(
            "default bounds: {} unique states ({} generated), max depth {}, in {elapsed:.1?}",
            checker.unique_state_count(),
            checker.state_count(),
            checker.max_depth()
        );
        checker.assert_properties();
        assert!(checker.is_done());
        assert!(
            checker.unique_state_count() > MIN_UNIQUE_STATES,
            "only {} states",
            checker.unique_state_count()
        );
    }

    /// Checks the default bounds with `bug` planted; returns the report and the first of
    /// `properties` with a counterexample, after replaying that counterexample (found under
    /// symmetry reduction, translated to fixed ids) in a model without symmetry reduction.
    fn counterexample(bug: PlantedBug, properties: &[&'static str]) -> (Report, &'static str) {
        let report = check(Bounds::default(), Some(bug));
        println!("{report}");
        let found = properties
            .iter()
            .find(|p| report.discoveries.contains_key(*p));
        let property = *found.unwrap_or_else(|| panic!("no counterexample: {report}"));
        let model = RaftModel::with_bug(fixed_ids(), bug);
        let last = replay(&model, &report.discoveries[property]);
        assert!(!holds(&model, property, &last), "{report}{last:#?}");
        (report, property)
    }

    #[test]
    fn unpersisted_vote_breaks_election_safety() {
        let (report, _) = counterexample(PlantedBug::VotedForNotPersisted, &[ELECTION_SAFETY]);
        let path = &report.discoveries[ELECTION_SAFETY];
        assert!(
            path.iter().any(|a| matches!(a, Action::Crash(_))),
            "{report}"
        );
    }

    #[test]
    fn committing_an_earlier_terms_entry_by_counting_breaks_leader_completeness() {
        let bug = PlantedBug::CommitEarlierTermByCounting;
        let (report, _) = counterexample(bug, &[LEADER_COMPLETENESS, STATE_MACHINE_SAFETY]);
        assert!(!report.violated().contains(&ELECTION_SAFETY), "{report}");
    }

    #[test]
    fn figure_8_is_caught_with_the_bug_and_prevented_without_it() {
        let buggy = RaftModel::with_bug(fixed_ids(), PlantedBug::CommitEarlierTermByCounting);
        let mut trace = figure_8();
        let state = replay(&buggy, &trace);
        assert!(!holds(&buggy, LEADER_COMPLETENESS, &state), "{state:#?}");
        // S2 then overwrites (1,1) on S1 and, still counting replicas, commits (2,1) at index 1.
        trace.push(append(1, 4, 2, 0, 1));
        let state = replay(&buggy, &trace);
        assert!(!holds(&buggy, STATE_MACHINE_SAFETY, &state), "{state:#?}");

        let correct = RaftModel::new(fixed_ids());
        let state = replay(&correct, &figure_8());
        assert!(
            state.committed.is_empty(),
            "term 3's leader must not commit (1,1)"
        );
        // S2 overwrites S1's (1,1) and commits (2,1) only through an entry of its own term.
        let mut trace = figure_8();
        trace.extend([append(1, 4, 2, 0, 1), request(2), append(1, 4, 2, 1, 1)]);
        let state = replay(&correct, &trace);
        assert_eq!(state.servers[1].log, state.servers[2].log);
        assert_eq!(state.servers[2].commit, 2);
        for property in SAFETY_PROPERTIES
            .into_iter()
            .chain([EARLIER_TERM_COMMITTED])
        {
            assert!(holds(&correct, property, &state), "{property}: {state:#?}");
        }
    }

    #[test]
    fn stale_append_entries_never_truncate() {
        let model = RaftModel::new(fixed_ids());
        let trace = [
            Action::Timeout(0),
            deliver_rv(1, rv(1, 0, 0, 0)),
            request(0),
            request(0),
            append(1, 1, 0, 0, 2),
        ];
        let state = replay(&model, &trace);
        assert_eq!(state.servers[1].log.len(), 2);
        assert_eq!(state.servers[0].commit, 2);
        // An older, shorter AppendEntries arriving late changes nothing.
        let late = model.next_state(&state, append(1, 1, 0, 0, 1));
        assert_eq!(
            late.map_or(state.servers[1].log, |s| s.servers[1].log),
            state.servers[1].log
        );
    }

    /// Explores bounds given by environment variables (S, T, L, V, C, M, SYM, TH, BUG), e.g.
    /// `T=3 L=3 cargo test -p rkube-spec --release -- --ignored explore --nocapture`.
    #[test]
    #[ignore]
    fn explore() {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let d = Bounds::default();
        let bounds = Bounds {
            servers: env("S", d.servers),
            max_term: env("T", d.max_term as usize) as Term,
            max_log_len: env("L", d.max_log_len),
            values: env("V", d.values as usize) as Value,
            max_crashes: env("C", d.max_crashes as usize) as u8,
            max_messages: env("M", d.max_messages),
            symmetry: env("SYM", 1) == 1,
            threads: env("TH", d.threads),
        };
        let bug = match env("BUG", 0) {
            1 => Some(PlantedBug::VotedForNotPersisted),
            2 => Some(PlantedBug::CommitEarlierTermByCounting),
            _ => None,
        };
        println!("{}", check(bounds, bug));
    }
}
