//! Member-to-member transport: one sender task per peer, batching raft messages into the
//! `Peer/Send` RPC. Raft tolerates lost and reordered messages, so a full queue drops
//! instead of blocking the raft loop; failures are reported back so raft-rs can mark the
//! peer unreachable and retry snapshots.

use std::collections::BTreeMap;
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;

use super::pb::rkubepeerpb::peer_client::PeerClient;
use super::pb::rkubepeerpb::RaftBatch;
use crate::platform::{net, task};

/// Raft messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_MESSAGES: usize = 4096;
/// Most messages sent in one RPC.
pub const MAX_BATCH_MESSAGES: usize = 512;
/// Deadline of one send RPC.
pub const PEER_RPC_TIMEOUT_MS: u64 = 5_000;
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
    ) -> Transport {
        let mut queues = BTreeMap::new();
        for (&id, url) in peers {
            if id == self_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MESSAGES);
            queues.insert(id, tx);
            task::spawn(peer_sender(self_id, id, url.clone(), rx, feedback.clone()));
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
) {
    let timeout = Duration::from_millis(PEER_RPC_TIMEOUT_MS);
    let channel = match net::grpc_channel(&url, timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(peer = peer_id, error = %e, "cannot reach peer");
            return;
        }
    };
    let mut client = PeerClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_MESSAGES {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let has_snapshot = batch
            .iter()
            .any(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let req = RaftBatch {
            from: self_id,
            messages: batch
                .iter()
                .map(|m| m.write_to_bytes().expect("raft message encodes"))
                .collect(),
        };
        let ok = client.send(req).await.is_ok();
        let mut report = Vec::new();
        if !ok {
            report.push(Feedback::Unreachable(peer_id));
        }
        if has_snapshot {
            report.push(if ok {
                Feedback::SnapshotFinished(peer_id)
            } else {
                Feedback::SnapshotFailed(peer_id)
            });
        }
        for f in report {
            let _ = feedback.try_send(f);
        }
    }
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
