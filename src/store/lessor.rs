//! Lease liveness, decided by the leader alone (as in etcd): a deadline per lease on the
//! leader's monotonic clock. Grants and revocations are replicated through Raft; deadlines
//! are not, so a new leader restarts every lease's full TTL (etcd's "promote").

use std::collections::{BTreeMap, BTreeSet};

/// etcd's largest lease TTL, in seconds.
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;
/// How long the leader waits before proposing the revocation of an expired lease again.
pub const REVOKE_RETRY_MS: u64 = 1_000;

/// The leader's lease deadlines.
#[derive(Debug, Default)]
pub struct Lessor {
    /// lease id → (deadline in node-clock ms, granted TTL in seconds)
    deadlines: BTreeMap<i64, (u64, i64)>,
    /// Leases whose revocation was proposed, with when (ms).
    revoking: BTreeMap<i64, u64>,
    active: bool,
}

impl Lessor {
    /// Becomes the deciding lessor: every known lease gets a fresh full TTL from `now_ms`.
    pub fn promote(&mut self, leases: &[(i64, i64)], now_ms: u64, min_ttl_secs: i64) {
        self.active = true;
        self.deadlines.clear();
        self.revoking.clear();
        for &(id, ttl) in leases {
            self.grant(id, ttl, now_ms, min_ttl_secs);
        }
    }

    /// Stops deciding (lost leadership).
    pub fn demote(&mut self) {
        self.active = false;
        self.deadlines.clear();
        self.revoking.clear();
    }

    /// True while this member is the leader's lessor.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Records a granted lease.
    pub fn grant(&mut self, id: i64, ttl_secs: i64, now_ms: u64, min_ttl_secs: i64) {
        if self.active {
            let ttl = ttl_secs.max(min_ttl_secs);
            self.deadlines.insert(id, (deadline(now_ms, ttl), ttl));
        }
    }

    /// Forgets a revoked lease.
    pub fn remove(&mut self, id: i64) {
        self.deadlines.remove(&id);
        self.revoking.remove(&id);
    }

    /// Renews a lease; returns its TTL, or None if unknown.
    pub fn renew(&mut self, id: i64, now_ms: u64) -> Option<i64> {
        let entry = self.deadlines.get_mut(&id)?;
        entry.0 = deadline(now_ms, entry.1);
        self.revoking.remove(&id);
        Some(entry.1)
    }

    /// Remaining whole seconds (rounded up) and the granted TTL.
    pub fn remaining(&self, id: i64, now_ms: u64) -> Option<(i64, i64)> {
        let (d, ttl) = *self.deadlines.get(&id)?;
        let left_ms = d.saturating_sub(now_ms);
        Some((left_ms.div_ceil(1000) as i64, ttl))
    }

    /// Leases past their deadline whose revocation should be proposed now.
    pub fn expired(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        for (&id, &(d, _)) in &self.deadlines {
            if d > now_ms {
                continue;
            }
            let due = self
                .revoking
                .get(&id)
                .is_none_or(|&at| now_ms >= at + REVOKE_RETRY_MS);
            if due {
                out.push(id);
            }
        }
        for &id in &out {
            self.revoking.insert(id, now_ms);
        }
        out
    }

    /// Lease ids known to the lessor.
    pub fn ids(&self) -> BTreeSet<i64> {
        self.deadlines.keys().copied().collect()
    }
}

fn deadline(now_ms: u64, ttl_secs: i64) -> u64 {
    now_ms.saturating_add((ttl_secs.max(0) as u64).saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_renewal_and_promotion() {
        let mut l = Lessor::default();
        l.grant(1, 5, 0, 2);
        assert!(l.ids().is_empty(), "an inactive lessor tracks nothing");
        l.promote(&[(1, 5), (2, 1)], 0, 2);
        assert_eq!(l.remaining(2, 0), Some((2, 2)), "TTL raised to the minimum");
        assert_eq!(l.expired(1_999), Vec::<i64>::new());
        assert_eq!(l.expired(2_000), vec![2]);
        assert_eq!(
            l.expired(2_500),
            Vec::<i64>::new(),
            "not re-proposed before retry"
        );
        assert_eq!(l.expired(3_000), vec![2]);
        assert_eq!(l.renew(1, 4_000), Some(5));
        assert_eq!(l.remaining(1, 4_000), Some((5, 5)));
        assert_eq!(l.expired(8_999), vec![2]);
        l.remove(2);
        assert_eq!(l.expired(9_000), vec![1]);
        l.demote();
        assert!(!l.is_active() && l.ids().is_empty());
    }
}
