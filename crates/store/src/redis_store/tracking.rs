//! Redis' server-assisted client-side caching as the near-cache's source of
//! invalidations: the alternative to the event feed that issue 10 asked to
//! measure (docs/benchmarks.md, "Event feed or key tracking").
//!
//! One connection of its own, in RESP3, runs `CLIENT TRACKING ON BCAST
//! PREFIX sigil:{`: from then on Redis pushes on it the name of every key
//! under the prefix that any client writes, or that expires or is evicted.
//! Broadcast mode, so the reads need not go through this connection (they
//! stay on the store's shared one). Session records are
//! `sigil:{<id>}:session`; the other keys under the prefix (used `jti`s,
//! subject indexes) are skipped. A null push (after `FLUSHALL` or
//! `FLUSHDB`) empties the cache.
//!
//! Pushes are applied in the connection's reader as they are parsed, with
//! no task in between. The connection is pinged every [`PING_EVERY`]; a
//! failed ping or a closed connection drops the cache (an invalidation may
//! have been lost), and the source connects again.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};

use super::{
    connection::{Target, pause_before_reconnecting},
    session_of_key,
};
use crate::{SessionTracking, TrackedCache};

/// The prefix tracked: every key Sigil writes.
const TRACKED_PREFIX: &str = "sigil:{";
/// How often the tracking connection is checked; bounds how late a dead
/// connection is noticed when Redis does not close it.
const PING_EVERY: Duration = Duration::from_millis(500);

/// Key tracking of one Redis server.
pub(super) struct KeyTracking {
    client: Client,
    timeout: Duration,
}

impl KeyTracking {
    /// Tracking over `target`, if it is a single server (a cluster would
    /// need a connection per master, followed through resharding).
    pub(super) fn new(target: &Target, timeout: Duration) -> Option<KeyTracking> {
        let Target::Single(client) = target else {
            return None;
        };
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings)).ok()?;
        Some(KeyTracking { client, timeout })
    }
}

impl SessionTracking for KeyTracking {
    fn start(&self, cache: TrackedCache) {
        tokio::spawn(track_forever(self.client.clone(), self.timeout, cache));
    }
}

/// Follows invalidations for as long as the process runs, reconnecting
/// after every failure.
async fn track_forever(client: Client, timeout: Duration, cache: TrackedCache) {
    let mut failures = 0;
    loop {
        let error = track(&client, timeout, &cache, &mut failures).await;
        cache.drop_all("the key tracking connection failed");
        tracing::warn!(%error, "key tracking down; reconnecting");
        pause_before_reconnecting(&mut failures).await;
    }
}

/// Tracks over one connection until it fails; returns the failure.
async fn track(
    client: &Client,
    timeout: Duration,
    cache: &TrackedCache,
    failures: &mut usize,
) -> redis::RedisError {
    // Set when this connection is given up, so that its late "closed"
    // push cannot drop a cache a newer connection has made live again.
    let retired = Arc::new(AtomicBool::new(false));
    let pushes = {
        let cache = cache.clone();
        let retired = Arc::clone(&retired);
        move |push: PushInfo| {
            apply(&cache, &retired, push);
            Ok::<(), ()>(())
        }
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_push_sender(pushes);
    let result: redis::RedisResult<std::convert::Infallible> = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(TRACKED_PREFIX)
            .query_async::<()>(&mut connection)
            .await?;
        cache.go_live();
        *failures = 0;
        loop {
            tokio::time::sleep(PING_EVERY).await;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
        }
    }
    .await;
    retired.store(true, Ordering::SeqCst);
    let Err(error) = result;
    error
}

/// Applies one push from Redis to the cache.
fn apply(cache: &TrackedCache, retired: &AtomicBool, push: PushInfo) {
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(Value::Array(keys)) => {
                for key in keys {
                    if let Value::BulkString(key) = key
                        && let Some(id) = session_of_key(key)
                    {
                        cache.forget(id);
                    }
                }
            }
            // Everything was flushed.
            Some(Value::Nil) => cache.forget_everything(),
            _ => {}
        },
        PushKind::Disconnection if !retired.load(Ordering::SeqCst) => {
            cache.drop_all("the key tracking connection closed");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_domain::SessionId;

    #[test]
    fn the_tracked_prefix_covers_session_keys() {
        let id = SessionId::from_bytes([7; 16]);
        let key = super::super::session_key(id);
        assert!(key.starts_with(TRACKED_PREFIX));
        assert_eq!(session_of_key(key.as_bytes()), Some(id));
        for other in [
            "sigil:{jti_abc}:used",
            "sigil:{subj_00}:sessions",
            "sigil:{sess_zz}:session",
            "sigil:{",
        ] {
            assert_eq!(session_of_key(other.as_bytes()), None, "{other}");
        }
    }
}
