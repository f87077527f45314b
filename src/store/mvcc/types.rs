//! The MVCC core's own request, response and error types.
//!
//! They mirror etcd v3's `etcdserverpb` / `mvccpb` messages field for field but are plain Rust
//! types: the gRPC layer converts from protobuf so that the core never depends on a wire
//! format, and tests can build requests without a code generator.

/// `range_end` value meaning "every key >= `key`" (etcd's `WithFromKey`).
pub const FROM_KEY_RANGE_END: &[u8] = b"\0";

/// One key's state at one revision, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    pub key: Vec<u8>,
    /// Revision of the put that created this generation of the key.
    pub create_revision: i64,
    /// Revision of the last write to the key.
    pub mod_revision: i64,
    /// Number of puts since the key was (re)created; 1 for a fresh key.
    pub version: i64,
    pub value: Vec<u8>,
    /// Lease the key is attached to; 0 for none.
    pub lease: i64,
}

/// Kind of a change, as etcd's `mvccpb.Event.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as delivered to watchers.
///
/// For `Delete`, `kv` holds only `key` and `mod_revision` (the deleting revision), every other
/// field zero or empty, exactly as etcd sends it. `prev_kv` is the key's state at
/// `mod_revision - 1` (etcd's watch rule), and is `None` for a put that creates the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// Sort direction of a range (etcd `RangeRequest.SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// Key order, unless the target is not `Key` (then etcd sorts ascending).
    #[default]
    None,
    Ascend,
    Descend,
}

/// Field a range is sorted by (etcd `RangeRequest.SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// A read of one key or a key range at one revision (etcd `RangeRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub key: Vec<u8>,
    /// Empty: only `key`. `"\0"`: every key >= `key`. Otherwise the half-open `[key, range_end)`.
    pub range_end: Vec<u8>,
    /// Maximum number of kvs returned; 0 (or negative) for no limit.
    pub limit: i64,
    /// Revision to read at; 0 (or negative) for the current one.
    pub revision: i64,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    /// Return keys with empty values.
    pub keys_only: bool,
    /// Return only `count`.
    pub count_only: bool,
    /// Filters, each ignored when 0.
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

impl RangeRequest {
    /// A read of exactly `key`.
    pub fn single(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    /// A read of the half-open range `[key, range_end)` (with etcd's special `range_end`s).
    pub fn between(key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            range_end: range_end.into(),
            ..Self::default()
        }
    }

    /// A read of every key starting with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let range_end = prefix_range_end(&key);
        Self::between(key, range_end)
    }
}

/// Result of a range (etcd `RangeResponse` without the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// More kvs matched than `limit` allowed.
    pub more: bool,
    /// Number of keys in the range at that revision, ignoring `limit` and the revision filters.
    pub count: i64,
}

/// A write of one key (etcd `PutRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Lease to attach the key to; 0 for none (also detaches).
    pub lease: i64,
    /// Return the previous kv.
    pub prev_kv: bool,
    /// Keep the current value; the key must exist and `value` must be empty.
    pub ignore_value: bool,
    /// Keep the current lease; the key must exist and `lease` must be 0.
    pub ignore_lease: bool,
}

impl PutRequest {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            ..Self::default()
        }
    }
}

/// Result of a put (etcd `PutResponse` without the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    pub prev_kv: Option<KeyValue>,
}

/// A delete of one key or a key range (etcd `DeleteRangeRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    pub key: Vec<u8>,
    /// Same meaning as [`RangeRequest::range_end`].
    pub range_end: Vec<u8>,
    /// Return the deleted kvs.
    pub prev_kv: bool,
}

impl DeleteRangeRequest {
    pub fn single(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    pub fn between(key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv: false,
        }
    }
}

/// Result of a delete (etcd `DeleteRangeResponse` without the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeResponse {
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// One operation of a txn branch (etcd `RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

/// Result of one operation (etcd `ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

/// What a compare looks at, with the operand (etcd `Compare.target` + `target_union`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Version(i64),
    Create(i64),
    Mod(i64),
    Value(Vec<u8>),
    Lease(i64),
}

/// How a compare relates the key's field to the operand (etcd `Compare.result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// A txn guard (etcd `Compare`): holds when it holds for every key in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: Vec<u8>,
    /// Same meaning as [`RangeRequest::range_end`].
    pub range_end: Vec<u8>,
    pub target: CompareTarget,
    pub result: CompareResult,
}

impl Compare {
    pub fn new(key: impl Into<Vec<u8>>, target: CompareTarget, result: CompareResult) -> Self {
        Self {
            key: key.into(),
            range_end: Vec::new(),
            target,
            result,
        }
    }
}

/// A conditional multi-op (etcd `TxnRequest`); branches may nest txns (etcd 3.3+).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

/// Result of a txn (etcd `TxnResponse` without the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// Every compare held, so `success` ran (else `failure`).
    pub succeeded: bool,
    /// One response per op of the branch that ran, in order.
    pub responses: Vec<ResponseOp>,
}

/// Errors of the MVCC core; `Display` is etcd's exact message where etcd has one, because
/// clients (etcdctl, python-etcd3, API servers) match on those strings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A snapshot that is truncated, corrupt, of another version or internally inconsistent.
    #[error("rkube: mvcc: bad snapshot: {0}")]
    BadSnapshot(String),
}

/// The `range_end` that selects every key starting with `prefix` (etcd's `GetPrefixRangeEnd`):
/// the prefix with its last byte below 0xff incremented and the rest dropped, or `"\0"` (all
/// keys from `prefix` on) when every byte is 0xff.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    FROM_KEY_RANGE_END.to_vec()
}

/// Whether `k` lies in the range `key`/`range_end` (etcd semantics, see [`RangeRequest`]).
pub fn key_in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == FROM_KEY_RANGE_END {
        k >= key
    } else {
        k >= key && k < range_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_follows_etcd() {
        assert_eq!(prefix_range_end(b"abc"), b"abd".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0".to_vec());
        assert_eq!(prefix_range_end(b""), b"\0".to_vec());
    }

    #[test]
    fn key_in_range_handles_point_from_key_and_half_open() {
        assert!(key_in_range(b"a", b"a", b""));
        assert!(!key_in_range(b"ab", b"a", b""));
        assert!(key_in_range(b"zzz", b"a", b"\0"));
        assert!(key_in_range(b"\0", b"\0", b"\0"));
        assert!(!key_in_range(b"", b"a", b"\0"));
        assert!(key_in_range(b"a", b"a", b"b"));
        assert!(!key_in_range(b"b", b"a", b"b"));
        assert!(!key_in_range(b"a", b"b", b"a"));
    }

    #[test]
    fn error_messages_are_etcds() {
        let cases = [
            (
                MvccError::Compacted,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            (
                MvccError::FutureRevision,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            (
                MvccError::LeaseNotFound,
                "etcdserver: requested lease not found",
            ),
            (MvccError::LeaseExists, "etcdserver: lease already exists"),
            (
                MvccError::DuplicateKey,
                "etcdserver: duplicate key given in txn request",
            ),
            (MvccError::KeyNotFound, "etcdserver: key not found"),
            (MvccError::EmptyKey, "etcdserver: key is not provided"),
            (
                MvccError::LeaseTtlTooLarge,
                "etcdserver: too large lease TTL",
            ),
        ];
        for (err, msg) in cases {
            assert_eq!(err.to_string(), msg);
        }
    }
}
