//! Range reads over the key index at one revision: key selection, etcd's revision filters,
//! sorting and `limit`/`more`/`count`, in exactly the order etcd's applier applies them.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::history::{live_kv, KeyHistory, Live, Revision};
use super::types::{RangeRequest, RangeResponse, SortOrder, SortTarget, FROM_KEY_RANGE_END};

/// The key index: every key with retained history, in byte order.
pub(crate) type KeyIndex = BTreeMap<Vec<u8>, KeyHistory>;

/// A live key at some revision, borrowed from the index.
#[derive(Clone, Copy)]
pub(crate) struct LiveRef<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) rev: Revision,
    pub(crate) live: &'a Live,
}

/// Keys of the index inside `key`/`range_end`, in key order (live or not).
pub(crate) fn keys_in_range<'a>(
    index: &'a KeyIndex,
    key: &'a [u8],
    range_end: &'a [u8],
) -> impl Iterator<Item = (&'a Vec<u8>, &'a KeyHistory)> + 'a {
    let bounds: (Bound<&[u8]>, Bound<&[u8]>) = if range_end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if range_end == FROM_KEY_RANGE_END {
        (Bound::Included(key), Bound::Unbounded)
    } else if range_end <= key {
        // An inverted range selects nothing; BTreeMap::range would panic on it.
        (Bound::Included(key), Bound::Excluded(key))
    } else {
        (Bound::Included(key), Bound::Excluded(range_end))
    };
    index.range::<[u8], _>(bounds)
}

/// Keys inside the range that exist at revision `rev`, in key order.
pub(crate) fn live_in_range<'a>(
    index: &'a KeyIndex,
    key: &'a [u8],
    range_end: &'a [u8],
    rev: i64,
) -> impl Iterator<Item = LiveRef<'a>> + 'a {
    keys_in_range(index, key, range_end).filter_map(move |(k, history)| {
        history.at(rev).map(|(r, live)| LiveRef {
            key: k,
            rev: r,
            live,
        })
    })
}

/// Serves `req` at revision `rev`, which the caller has already resolved and checked against
/// the compaction and current revisions.
pub(crate) fn range_at(index: &KeyIndex, req: &RangeRequest, rev: i64) -> RangeResponse {
    let matched = live_in_range(index, &req.key, &req.range_end, rev);
    if req.count_only {
        // etcd returns no kvs (so `more` stays false) and ignores the filters for the count.
        return RangeResponse {
            kvs: Vec::new(),
            more: false,
            count: count_i64(matched.count()),
        };
    }
    let mut count = 0usize;
    let mut kept: Vec<LiveRef<'_>> = matched
        .inspect(|_| count += 1)
        .filter(|r| passes_filters(req, r))
        .collect();
    sort_refs(&mut kept, req.sort_order, req.sort_target);
    let limit = usize::try_from(req.limit).unwrap_or(0);
    let more = limit > 0 && kept.len() > limit;
    if more {
        kept.truncate(limit);
    }
    let kvs = kept
        .iter()
        .map(|r| {
            let mut kv = live_kv(r.key, r.rev.main, r.live);
            if req.keys_only {
                kv.value = Vec::new();
            }
            kv
        })
        .collect();
    RangeResponse {
        kvs,
        more,
        count: count_i64(count),
    }
}

fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// etcd's `min/max_{mod,create}_revision` filters; 0 disables each.
fn passes_filters(req: &RangeRequest, r: &LiveRef<'_>) -> bool {
    let m = r.rev.main;
    let c = r.live.create_revision;
    !(req.max_mod_revision != 0 && m > req.max_mod_revision
        || req.min_mod_revision != 0 && m < req.min_mod_revision
        || req.max_create_revision != 0 && c > req.max_create_revision
        || req.min_create_revision != 0 && c < req.min_create_revision)
}

/// Sorts like etcd: no order on a non-key target means ascending; `None` on `Key` keeps the
/// index's key order. Sorting is stable, so ties stay in key order (etcd leaves them
/// unspecified).
fn sort_refs(refs: &mut [LiveRef<'_>], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let by = |a: &LiveRef<'_>, b: &LiveRef<'_>| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(b.key),
            SortTarget::Version => a.live.version.cmp(&b.live.version),
            SortTarget::Create => a.live.create_revision.cmp(&b.live.create_revision),
            SortTarget::Mod => a.rev.main.cmp(&b.rev.main),
            SortTarget::Value => a.live.value.cmp(&b.live.value),
        }
    };
    match order {
        SortOrder::Descend => refs.sort_by(|a, b| by(b, a)),
        _ => refs.sort_by(by),
    }
}
