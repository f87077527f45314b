//! The API server's view of the store: objects as JSON values under `/registry/...` keys,
//! every write a Txn conditioned on existence or on the object's mod revision, so that two
//! writers racing on one object never lose an update (one of them gets a conflict).

use std::time::Duration;

use crate::platform::net;
use crate::store::pb::etcdserverpb as pb;
use crate::store::pb::etcdserverpb::kv_client::KvClient;
use crate::store::pb::etcdserverpb::watch_client::WatchClient;

/// Deadline of one store call.
pub const STORE_CALL_TIMEOUT_MS: u64 = 10_000;
/// Largest store response accepted (gRPC's default of 4 MiB is one list of ~2,500 pods).
pub const MAX_STORE_RESPONSE_BYTES: usize = 1 << 30;
/// Most objects one list reads from the store (larger lists are refused, not truncated).
pub const MAX_LIST_OBJECTS: i64 = 50_000;

/// Why a store operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The object changed since the revision the caller expected.
    #[error("conflict")]
    Conflict,
    #[error("too many objects (more than {MAX_LIST_OBJECTS}) to list at once")]
    TooLarge,
    /// The revision asked for was compacted away.
    #[error("the requested revision has been compacted")]
    Compacted,
    /// The store could not be reached or refused the call (its message).
    #[error("{0}")]
    Unavailable(String),
}

/// One page of a paginated read.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<(Vec<u8>, Stored)>,
    pub revision: i64,
    pub more: bool,
}

/// One stored object: its bytes and the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// A store client for objects.
#[derive(Clone)]
pub struct Storage {
    kv: KvClient<tonic::transport::Channel>,
    watch: WatchClient<tonic::transport::Channel>,
}

/// Requests queued to one store watch stream before the sender waits.
const WATCH_REQUEST_QUEUE: usize = 4;

/// An open store watch: requests go in (progress requests), responses come out.
pub struct StoreWatch {
    pub requests: tokio::sync::mpsc::Sender<pb::WatchRequest>,
    pub responses: tonic::Streaming<pb::WatchResponse>,
}

fn unavailable(s: tonic::Status) -> StorageError {
    StorageError::Unavailable(s.message().to_string())
}

/// The end of the key range holding every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn compare_mod(key: &[u8], revision: i64) -> pb::Compare {
    pb::Compare {
        key: key.to_vec(),
        target: pb::compare::CompareTarget::Mod as i32,
        result: pb::compare::CompareResult::Equal as i32,
        target_union: Some(pb::compare::TargetUnion::ModRevision(revision)),
        ..Default::default()
    }
}

fn op_put(key: &[u8], value: Vec<u8>) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: key.to_vec(),
            value,
            ..Default::default()
        })),
    }
}

fn op_get(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    }
}

fn header_rev(h: &Option<pb::ResponseHeader>) -> i64 {
    h.as_ref().map(|h| h.revision).unwrap_or(0)
}

impl Storage {
    /// A client of the store at `endpoint` (`http://host:port`); connects lazily.
    pub fn new(endpoints: &[String]) -> Result<Storage, String> {
        let timeout = Duration::from_millis(STORE_CALL_TIMEOUT_MS);
        let ch = net::grpc_channel_many(endpoints, timeout)?;
        Ok(Storage {
            kv: KvClient::new(ch.clone()).max_decoding_message_size(MAX_STORE_RESPONSE_BYTES),
            watch: WatchClient::new(ch).max_decoding_message_size(MAX_STORE_RESPONSE_BYTES),
        })
    }

    /// Reads one object (linearizable).
    pub async fn get(&self, key: &[u8]) -> Result<Stored, StorageError> {
        let req = pb::RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        };
        let r = self.kv.clone().range(req).await.map_err(unavailable)?;
        let kv = r.into_inner().kvs.into_iter().next();
        let kv = kv.ok_or(StorageError::NotFound)?;
        Ok(Stored {
            value: kv.value,
            mod_revision: kv.mod_revision,
        })
    }

    /// The store's current revision, read linearizably (a consistent read from the watch
    /// cache waits until the cache has seen this far).
    pub async fn revision(&self, key: &[u8]) -> Result<i64, StorageError> {
        let req = pb::RangeRequest {
            key: key.to_vec(),
            keys_only: true,
            limit: 1,
            ..Default::default()
        };
        let r = self.kv.clone().range(req).await.map_err(unavailable)?;
        Ok(header_rev(&r.into_inner().header))
    }

    /// Watches every key under `prefix` from `start_rev` (without previous values: the watch
    /// cache keeps the objects itself).
    pub async fn watch(&self, prefix: &[u8], start_rev: i64) -> Result<StoreWatch, StorageError> {
        let (requests, rx) = tokio::sync::mpsc::channel(WATCH_REQUEST_QUEUE);
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: prefix.to_vec(),
                    range_end: prefix_end(prefix),
                    start_revision: start_rev,
                    prev_kv: false,
                    ..Default::default()
                },
            )),
        };
        requests
            .try_send(create)
            .expect("a fresh queue has room for the create request");
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let r = self
            .watch
            .clone()
            .watch(stream)
            .await
            .map_err(unavailable)?;
        Ok(StoreWatch {
            requests,
            responses: r.into_inner(),
        })
    }

    /// One page of the keys in `[start, end)`: at most `limit` objects (0 = up to
    /// [`MAX_LIST_OBJECTS`]) read at `revision` (0 = now). Returns the objects with their keys,
    /// the revision read at, and whether more follow.
    pub async fn list_page(
        &self,
        start: &[u8],
        end: &[u8],
        limit: i64,
        revision: i64,
    ) -> Result<Page, StorageError> {
        let limit = if limit <= 0 {
            MAX_LIST_OBJECTS
        } else {
            limit.min(MAX_LIST_OBJECTS)
        };
        let req = pb::RangeRequest {
            key: start.to_vec(),
            range_end: end.to_vec(),
            limit,
            revision,
            ..Default::default()
        };
        let r = self.kv.clone().range(req).await;
        let r = r.map_err(|s| {
            if s.message().contains("compacted") {
                StorageError::Compacted
            } else {
                unavailable(s)
            }
        })?;
        let r = r.into_inner();
        let items = r
            .kvs
            .into_iter()
            .map(|kv| {
                let stored = Stored {
                    value: kv.value,
                    mod_revision: kv.mod_revision,
                };
                (kv.key, stored)
            })
            .collect();
        Ok(Page {
            items,
            revision: header_rev(&r.header),
            more: r.more,
        })
    }

    /// Writes `value` at `key` if nothing is there; returns the new revision.
    pub async fn create(&self, key: &[u8], value: Vec<u8>) -> Result<i64, StorageError> {
        let absent = pb::Compare {
            key: key.to_vec(),
            target: pb::compare::CompareTarget::Create as i32,
            result: pb::compare::CompareResult::Equal as i32,
            target_union: Some(pb::compare::TargetUnion::CreateRevision(0)),
            ..Default::default()
        };
        let txn = pb::TxnRequest {
            compare: vec![absent],
            success: vec![op_put(key, value)],
            failure: vec![],
        };
        let r = self.kv.clone().txn(txn).await.map_err(unavailable)?;
        let r = r.into_inner();
        if !r.succeeded {
            return Err(StorageError::AlreadyExists);
        }
        Ok(header_rev(&r.header))
    }

    /// Replaces the object at `key` if it is still at `expect_mod`; returns the new revision.
    pub async fn update(
        &self,
        key: &[u8],
        expect_mod: i64,
        value: Vec<u8>,
    ) -> Result<i64, StorageError> {
        self.if_unchanged(key, expect_mod, op_put(key, value)).await
    }

    /// Deletes the object at `key` if it is still at `expect_mod`; returns the revision.
    pub async fn delete(&self, key: &[u8], expect_mod: i64) -> Result<i64, StorageError> {
        let del = pb::RequestOp {
            request: Some(pb::request_op::Request::RequestDeleteRange(
                pb::DeleteRangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                },
            )),
        };
        self.if_unchanged(key, expect_mod, del).await
    }

    /// Runs `op` if `key` is still at `expect_mod`; otherwise says whether it is gone or
    /// changed. Returns the revision of the write.
    async fn if_unchanged(
        &self,
        key: &[u8],
        expect_mod: i64,
        op: pb::RequestOp,
    ) -> Result<i64, StorageError> {
        let txn = pb::TxnRequest {
            compare: vec![compare_mod(key, expect_mod)],
            success: vec![op],
            failure: vec![op_get(key)],
        };
        let r = self.kv.clone().txn(txn).await.map_err(unavailable)?;
        let r = r.into_inner();
        if r.succeeded {
            return Ok(header_rev(&r.header));
        }
        Err(failure_reason(&r))
    }
}

/// A failed conditional write: the object is gone, or it changed.
fn failure_reason(r: &pb::TxnResponse) -> StorageError {
    let found = r.responses.iter().any(|op| {
        matches!(&op.response, Some(pb::response_op::Response::ResponseRange(g)) if !g.kvs.is_empty())
    });
    if found {
        StorageError::Conflict
    } else {
        StorageError::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_covers_exactly_the_prefix() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
