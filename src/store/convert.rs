//! Conversions between etcd's protobuf messages (`pb`) and the MVCC core's own types.
//! Kept in one place so the core never depends on the wire format.

use super::mvcc as m;
use super::pb::etcdserverpb as pb;
use super::pb::mvccpb;

/// Largest nesting of txns inside txns accepted from a client.
pub const MAX_TXN_NESTING_DEPTH: usize = 16;

/// A request that cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: too many operations in txn request")]
    TooDeep,
    #[error("etcdserver: empty request op")]
    EmptyOp,
    #[error("etcdserver: unknown compare target or result")]
    BadCompare,
}

pub fn kv_to_pb(kv: &m::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.clone(),
        lease: kv.lease,
    }
}

pub fn event_to_pb(e: &m::Event, with_prev: bool) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match e.kind {
            m::EventKind::Put => mvccpb::event::EventType::Put as i32,
            m::EventKind::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(kv_to_pb(&e.kv)),
        prev_kv: if with_prev {
            e.prev_kv.as_ref().map(kv_to_pb)
        } else {
            None
        },
    }
}

pub fn range_from_pb(r: &pb::RangeRequest) -> Result<m::RangeRequest, ConvertError> {
    if r.key.is_empty() {
        return Err(ConvertError::EmptyKey);
    }
    use pb::range_request::{SortOrder as O, SortTarget as T};
    Ok(m::RangeRequest {
        key: r.key.clone(),
        range_end: r.range_end.clone(),
        limit: r.limit,
        revision: r.revision,
        sort_order: match O::try_from(r.sort_order).unwrap_or(O::None) {
            O::None => m::SortOrder::None,
            O::Ascend => m::SortOrder::Ascend,
            O::Descend => m::SortOrder::Descend,
        },
        sort_target: match T::try_from(r.sort_target).unwrap_or(T::Key) {
            T::Key => m::SortTarget::Key,
            T::Version => m::SortTarget::Version,
            T::Create => m::SortTarget::Create,
            T::Mod => m::SortTarget::Mod,
            T::Value => m::SortTarget::Value,
        },
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

pub fn range_to_pb(r: &m::RangeResponse, header: &pb::ResponseHeader) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(*header),
        kvs: r.kvs.iter().map(kv_to_pb).collect(),
        more: r.more,
        count: r.count,
    }
}

pub fn put_from_pb(p: &pb::PutRequest) -> Result<m::PutRequest, ConvertError> {
    if p.key.is_empty() {
        return Err(ConvertError::EmptyKey);
    }
    Ok(m::PutRequest {
        key: p.key.clone(),
        value: p.value.clone(),
        lease: p.lease,
        prev_kv: p.prev_kv,
        ignore_value: p.ignore_value,
        ignore_lease: p.ignore_lease,
    })
}

pub fn delete_from_pb(d: &pb::DeleteRangeRequest) -> Result<m::DeleteRangeRequest, ConvertError> {
    if d.key.is_empty() {
        return Err(ConvertError::EmptyKey);
    }
    Ok(m::DeleteRangeRequest {
        key: d.key.clone(),
        range_end: d.range_end.clone(),
        prev_kv: d.prev_kv,
    })
}

fn compare_from_pb(c: &pb::Compare) -> Result<m::Compare, ConvertError> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(c.result).map_err(|_| ConvertError::BadCompare)? {
        R::Equal => m::CompareResult::Equal,
        R::Greater => m::CompareResult::Greater,
        R::Less => m::CompareResult::Less,
        R::NotEqual => m::CompareResult::NotEqual,
    };
    let target_kind = T::try_from(c.target).map_err(|_| ConvertError::BadCompare)?;
    let target = match (target_kind, &c.target_union) {
        (T::Version, Some(U::Version(v))) => m::CompareTarget::Version(*v),
        (T::Version, None) => m::CompareTarget::Version(0),
        (T::Create, Some(U::CreateRevision(v))) => m::CompareTarget::Create(*v),
        (T::Create, None) => m::CompareTarget::Create(0),
        (T::Mod, Some(U::ModRevision(v))) => m::CompareTarget::Mod(*v),
        (T::Mod, None) => m::CompareTarget::Mod(0),
        (T::Value, Some(U::Value(v))) => m::CompareTarget::Value(v.clone()),
        (T::Value, None) => m::CompareTarget::Value(Vec::new()),
        (T::Lease, Some(U::Lease(v))) => m::CompareTarget::Lease(*v),
        (T::Lease, None) => m::CompareTarget::Lease(0),
        _ => return Err(ConvertError::BadCompare),
    };
    Ok(m::Compare {
        key: c.key.clone(),
        range_end: c.range_end.clone(),
        target,
        result,
    })
}

fn op_from_pb(op: &pb::RequestOp, depth: usize) -> Result<m::RequestOp, ConvertError> {
    use pb::request_op::Request as R;
    match &op.request {
        Some(R::RequestRange(r)) => Ok(m::RequestOp::Range(range_from_pb(r)?)),
        Some(R::RequestPut(p)) => Ok(m::RequestOp::Put(put_from_pb(p)?)),
        Some(R::RequestDeleteRange(d)) => Ok(m::RequestOp::DeleteRange(delete_from_pb(d)?)),
        Some(R::RequestTxn(t)) => Ok(m::RequestOp::Txn(txn_from_pb_depth(t, depth + 1)?)),
        None => Err(ConvertError::EmptyOp),
    }
}

fn txn_from_pb_depth(t: &pb::TxnRequest, depth: usize) -> Result<m::TxnRequest, ConvertError> {
    if depth > MAX_TXN_NESTING_DEPTH {
        return Err(ConvertError::TooDeep);
    }
    Ok(m::TxnRequest {
        compare: t
            .compare
            .iter()
            .map(compare_from_pb)
            .collect::<Result<_, _>>()?,
        success: t
            .success
            .iter()
            .map(|o| op_from_pb(o, depth))
            .collect::<Result<_, _>>()?,
        failure: t
            .failure
            .iter()
            .map(|o| op_from_pb(o, depth))
            .collect::<Result<_, _>>()?,
    })
}

pub fn txn_from_pb(t: &pb::TxnRequest) -> Result<m::TxnRequest, ConvertError> {
    txn_from_pb_depth(t, 0)
}

/// Operations in a txn, counting nested txns' ops (etcd limits the largest branch).
pub fn txn_op_count(t: &pb::TxnRequest) -> usize {
    t.success.len().max(t.failure.len()).max(t.compare.len())
}

pub fn put_to_pb(p: &m::PutResponse, header: &pb::ResponseHeader) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(*header),
        prev_kv: p.prev_kv.as_ref().map(kv_to_pb),
    }
}

pub fn delete_to_pb(
    d: &m::DeleteRangeResponse,
    header: &pb::ResponseHeader,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(*header),
        deleted: d.deleted,
        prev_kvs: d.prev_kvs.iter().map(kv_to_pb).collect(),
    }
}

pub fn txn_to_pb(t: &m::TxnResponse, header: &pb::ResponseHeader) -> pb::TxnResponse {
    use pb::response_op::Response as R;
    pb::TxnResponse {
        header: Some(*header),
        succeeded: t.succeeded,
        responses: t
            .responses
            .iter()
            .map(|r| pb::ResponseOp {
                response: Some(match r {
                    m::ResponseOp::Range(x) => R::ResponseRange(range_to_pb(x, header)),
                    m::ResponseOp::Put(x) => R::ResponsePut(put_to_pb(x, header)),
                    m::ResponseOp::DeleteRange(x) => {
                        R::ResponseDeleteRange(delete_to_pb(x, header))
                    }
                    m::ResponseOp::Txn(x) => R::ResponseTxn(txn_to_pb(x, header)),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_conversion_rejects_mismatched_union() {
        let c = pb::Compare {
            result: 0,
            target: pb::compare::CompareTarget::Version as i32,
            key: b"k".to_vec(),
            target_union: Some(pb::compare::TargetUnion::Value(b"v".to_vec())),
            range_end: vec![],
        };
        assert_eq!(compare_from_pb(&c), Err(ConvertError::BadCompare));
    }

    #[test]
    fn deep_nesting_is_rejected_not_recursed_forever() {
        let mut t = pb::TxnRequest::default();
        for _ in 0..(MAX_TXN_NESTING_DEPTH + 2) {
            t = pb::TxnRequest {
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestTxn(t)),
                }],
                ..Default::default()
            };
        }
        assert_eq!(txn_from_pb(&t), Err(ConvertError::TooDeep));
    }

    #[test]
    fn empty_key_is_an_etcd_error() {
        let e = put_from_pb(&pb::PutRequest::default()).unwrap_err();
        assert_eq!(e.to_string(), "etcdserver: key is not provided");
    }
}
