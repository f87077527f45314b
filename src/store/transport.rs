//! Member-to-member transport: one sender task per peer, batching raft messages onto a
//! long-lived `Peer/Stream` RPC (snapshots alone through the acknowledged `Peer/Send`). Raft tolerates lost and reordered messages, so a full queue drops
//! instead of blocking the raft loop; failures are reported back so raft-rs can mark the
//! peer unreachable and retry snapshots.

use std::collections::BTreeMap;
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;

use super::pb::rkubepeerpb::peer_client::PeerClient;
use super::pb::rkubepeerpb::RaftBatch;
use crate::platform::time::Clock;
use crate::platform::{net, task};

/// Raft messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_MESSAGES: usize = 4096;
/// Most messages sent in one RPC.
pub const MAX_BATCH_MESSAGES: usize = 512;
/// Deadline of one send RPC.
pub const PEER_RPC_TIMEOUT_MS: u64 = 5_000;
/// How long one batch stream lives before the sender replaces it; well inside the RPC
/// deadline, which also bounds a stream.
pub const PEER_STREAM_LIFETIME_MS: u64 = 2_000;
/// Batches buffered for a stream before the sender counts the peer as not keeping up.
pub const STREAM_QUEUE_BATCHES: usize = 256;
/// Largest peer RPC accepted or sent (snapshots travel inline).
pub const MAX_PEER_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// What the transport tells the raft loop after trying to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Unreachable(u64),
    SnapshotFinished(u64),
    SnapshotFailed(u64),
}

/// The outgoing side: a queue per peer.
pub struct Transport {
    queues: BTreeMap<u64, mpsc::Sender<Message>>,
}

impl Transport {
    /// Starts one sender task per peer (`peers`: id → peer URL; excludes self).
    pub fn start(
        self_id: u64,
        peers: &BTreeMap<u64, String>,
        feedback: mpsc::Sender<Feedback>,
        clock: &Clock,
    ) -> Transport {
        let mut queues = BTreeMap::new();
        for (&id, url) in peers {
            if id == self_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MESSAGES);
            queues.insert(id, tx);
            task::spawn(peer_sender(
                self_id,
                id,
                url.clone(),
                rx,
                feedback.clone(),
                clock.clone(),
            ));
        }
        Transport { queues }
    }

    /// Queues messages; drops (and reports) what does not fit.
    pub fn send(&self, msgs: Vec<Message>, feedback: &mut Vec<Feedback>) {
        for m in msgs {
            let to = m.to;
            let is_snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            match self.queues.get(&to) {
                Some(q) => {
                    if q.try_send(m).is_err() {
                        feedback.push(Feedback::Unreachable(to));
                        if is_snapshot {
                            feedback.push(Feedback::SnapshotFailed(to));
                        }
                    }
                }
                None => tracing::warn!(to, "raft message for unknown member dropped"),
            }
        }
    }
}

async fn peer_sender(
    self_id: u64,
    peer_id: u64,
    url: String,
    mut rx: mpsc::Receiver<Message>,
    feedback: mpsc::Sender<Feedback>,
    clock: Clock,
) {
    let timeout = Duration::from_millis(PEER_RPC_TIMEOUT_MS);
    let channel = match net::grpc_channel(&url, timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(peer = peer_id, error = %e, "cannot reach peer");
            return;
        }
    };
    let client = PeerClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    let link = Link {
        self_id,
        peer_id,
        client,
        feedback,
    };
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        if is_snapshot(&first) {
            link.send_snapshot(first).await;
        } else {
            next = link.stream_for_a_while(first, &mut rx, &clock).await;
        }
    }
}

fn is_snapshot(m: &Message) -> bool {
    m.get_msg_type() == MessageType::MsgSnapshot
}

/// One peer's outgoing connection state.
struct Link {
    self_id: u64,
    peer_id: u64,
    client: PeerClient<tonic::transport::Channel>,
    feedback: mpsc::Sender<Feedback>,
}

impl Link {
    fn batch(&self, msgs: &[Message]) -> RaftBatch {
        RaftBatch {
            from: self.self_id,
            messages: msgs
                .iter()
                .map(|m| m.write_to_bytes().expect("raft message encodes"))
                .collect(),
        }
    }

    fn report(&self, f: Feedback) {
        let _ = self.feedback.try_send(f);
    }

    /// A snapshot goes alone through the acknowledged RPC, so raft-rs learns its fate.
    async fn send_snapshot(&self, m: Message) {
        let ok = self.client.clone().send(self.batch(&[m])).await.is_ok();
        if ok {
            self.report(Feedback::SnapshotFinished(self.peer_id));
        } else {
            self.report(Feedback::Unreachable(self.peer_id));
            self.report(Feedback::SnapshotFailed(self.peer_id));
        }
    }

    /// Opens a stream, feeds it batches until `PEER_STREAM_LIFETIME_MS` passes, the stream
    /// fails, or a snapshot comes up (returned, to go out next), then closes it. Closing
    /// finishes in the background so the next stream opens at once; raft tolerates the
    /// reordering at the seam between two streams.
    async fn stream_for_a_while(
        &self,
        first: Message,
        rx: &mut mpsc::Receiver<Message>,
        clock: &Clock,
    ) -> Option<Message> {
        let (stream_tx, stream_rx) = mpsc::channel::<RaftBatch>(STREAM_QUEUE_BATCHES);
        let mut client = self.client.clone();
        let call = task::spawn(async move {
            client
                .stream(tokio_stream::wrappers::ReceiverStream::new(stream_rx))
                .await
        });
        let (mut pending, mut next) = drain(first, rx);
        let lifetime = clock.sleep(Duration::from_millis(PEER_STREAM_LIFETIME_MS));
        tokio::pin!(lifetime);
        loop {
            if stream_tx.try_send(self.batch(&pending)).is_err() {
                // Closed (the call failed) or full (the peer does not keep up): either way
                // these messages are lost; raft learns the peer is unreachable and retries.
                self.report(Feedback::Unreachable(self.peer_id));
                break;
            }
            if next.is_some() {
                break;
            }
            let m = tokio::select! {
                biased; // deterministic under simulation (see the node loop)
                _ = &mut lifetime => break,
                m = rx.recv() => m,
            };
            match m {
                None => break,
                Some(m) if is_snapshot(&m) => {
                    next = Some(m);
                    break;
                }
                Some(m) => (pending, next) = drain(m, rx),
            }
        }
        drop(stream_tx);
        let feedback = self.feedback.clone();
        let peer_id = self.peer_id;
        task::spawn(async move {
            if !matches!(call.await, Ok(Ok(_))) {
                let _ = feedback.try_send(Feedback::Unreachable(peer_id));
            }
        });
        next
    }
}

/// Takes `first` and whatever else is queued, up to a batch, stopping before a snapshot
/// (returned separately, to travel alone).
fn drain(first: Message, rx: &mut mpsc::Receiver<Message>) -> (Vec<Message>, Option<Message>) {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_MESSAGES {
        match rx.try_recv() {
            Ok(m) if is_snapshot(&m) => return (batch, Some(m)),
            Ok(m) => batch.push(m),
            Err(_) => break,
        }
    }
    (batch, None)
}

/// Decodes an incoming batch; rejects messages not from the claimed sender.
pub fn decode_batch(batch: &RaftBatch) -> Result<Vec<Message>, String> {
    let mut out = Vec::with_capacity(batch.messages.len());
    for raw in &batch.messages {
        let m = Message::parse_from_bytes(raw).map_err(|e| format!("bad raft message: {e}"))?;
        if m.from != batch.from {
            return Err(format!(
                "message from {} in a batch from {}",
                m.from, batch.from
            ));
        }
        out.push(m);
    }
    Ok(out)
}
