//! Rate limits on the one call anyone may make, CreateSession: per peer
//! address and in total, so a flood cannot fill the store.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use governor::{
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use sigil_domain::{Error, Result};

/// Forget idle peers after this many checks, so the map stays small.
const PRUNE_EVERY_CHECKS: u64 = 10_000;

/// CreateSession limits, per second. Zero turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateSessionRates {
    /// Sessions one peer address may create per second (bursts of as many).
    pub per_peer: u32,
    /// Sessions all callers together may create per second.
    pub global: u32,
}

impl Default for CreateSessionRates {
    fn default() -> Self {
        // Many services sit behind one address: the default must not
        // throttle ordinary use from one host.
        CreateSessionRates {
            per_peer: 1_000,
            global: 10_000,
        }
    }
}

/// The limiters. Cheap to clone; clones share their counts.
#[derive(Clone)]
pub struct RateLimits {
    per_peer: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    global: Option<Arc<DefaultDirectRateLimiter>>,
    checks: Arc<AtomicU64>,
}

impl RateLimits {
    /// Limiters for `rates`.
    pub fn new(rates: CreateSessionRates) -> Self {
        let quota = |rate: u32| NonZeroU32::new(rate).map(Quota::per_second);
        RateLimits {
            per_peer: quota(rates.per_peer).map(|quota| Arc::new(RateLimiter::keyed(quota))),
            global: quota(rates.global).map(|quota| Arc::new(RateLimiter::direct(quota))),
            checks: Arc::default(),
        }
    }

    /// Admits one CreateSession from `peer`, or RESOURCE_EXHAUSTED saying
    /// when to retry.
    pub fn check_create_session(&self, peer: Option<IpAddr>) -> Result<()> {
        let prune = self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY_CHECKS);
        if let Some(per_peer) = self.per_peer.as_ref().filter(|_| prune) {
            per_peer.retain_recent();
        }
        let now = DefaultClock::default().now();
        let peer_limit = match (&self.per_peer, peer) {
            (Some(per_peer), Some(peer)) => per_peer.check_key(&peer).err(),
            _ => None,
        };
        let global_limit = || self.global.as_ref().and_then(|global| global.check().err());
        match peer_limit.or_else(global_limit) {
            Some(not_until) => Err(Error::RateLimited {
                retry_after: not_until.wait_time_from(now),
            }),
            None => Ok(()),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(CreateSessionRates::default())
    }
}
