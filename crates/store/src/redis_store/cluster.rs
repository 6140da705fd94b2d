//! Writes on a Redis Cluster, where no script may touch keys of two slots.
//!
//! A session's keys share one hash tag, but its change, the pending cap
//! (`{pending}`), the event feed (`{events}`) and a subject's index
//! (`{subj_…}`) each live in a slot of their own. On a single Redis one
//! script does it all; on a cluster a write is these steps, in this order:
//!
//! 1. the subject index gains the session (as on a single Redis: the index
//!    is a superset of the subject's sessions; stale members are pruned
//!    when listed);
//! 2. for a new session, the pending cap admits it (`{pending}`'s own
//!    script: prune the expired, count, add), so the cap is never exceeded;
//! 3. the record changes in one script on the session's slot: insert if
//!    absent, or compare-and-swap on the revision (with `WAIT` for replicas
//!    on the same node when confirmation is on);
//! 4. the session leaves the pending index, and the event is appended to
//!    the feed (its own script on `{events}`: counter and stream together,
//!    so cursors stay gapless).
//!
//! What a crash or an unreachable node between the steps leaves behind: a
//! pending entry for a session that is no longer pending (counted against
//! the cap until its nonce would have expired: the cap may refuse early,
//! never admit too many), and a change without its event (counted in
//! `sigil_store_events_lost_total`). Hence the feed on a cluster is
//! at-most-once per change and the validator's near-cache, which relies on
//! seeing every change, refuses to run over it.

use redis::{AsyncCommands, Script, Value};
use sigil_domain::{Error, Event, EventKind, Result, SessionRecord};

use super::{
    Emit, PENDING_KEY, RedisStore, encode,
    events::{EVENT_COUNTER_KEY, EVENT_STREAM_KEY},
    session_key,
};

/// Writes a new record unless the id is taken (0). KEYS the record; ARGV
/// revision, JSON, eviction time (Unix ms).
const SESSION_INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
";

/// Compare-and-swap on the revision (0 if it moved). KEYS the record; ARGV
/// expected revision, new revision, JSON, eviction time (Unix ms).
const SESSION_REPLACE: &str = r"
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
";

/// Admits a pending session unless the index is full (0). KEYS the pending
/// index; ARGV nonce expiry (Unix ms), session id, most pending sessions.
const PENDING_ADMIT: &str = r"
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')
redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'NX')
return 1
";

/// The scripts of the cluster's write path, each on one slot.
#[derive(Clone)]
pub(super) struct Scripts {
    insert: Script,
    replace: Script,
    admit: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            insert: Script::new(SESSION_INSERT),
            replace: Script::new(SESSION_REPLACE),
            admit: Script::new(PENDING_ADMIT),
        }
    }
}

impl RedisStore {
    /// Inserts a new session on a cluster: steps 2 to 4 of this module's
    /// order (the caller indexed it).
    pub(super) async fn insert_on_cluster(
        &self,
        scripts: &Scripts,
        record: &SessionRecord,
        data: String,
    ) -> Result<()> {
        let id = record.session.id.to_string();
        let evict_at = record.evict_at().unix_ms();
        let mut connection = self.connection();
        if self.max_pending_sessions != 0 {
            let mut admit = scripts.admit.key(PENDING_KEY);
            admit.arg(evict_at).arg(&id).arg(self.max_pending_sessions);
            let admitted: i64 = self.call(admit.invoke_async(&mut connection)).await?;
            if admitted != 1 {
                return Err(Error::PendingSessionsFull {
                    limit: self.max_pending_sessions,
                });
            }
        }
        let mut insert = scripts.insert.key(session_key(record.session.id));
        insert.arg(record.revision).arg(data).arg(evict_at);
        let inserted = self.call(insert.invoke_async::<i64>(&mut connection)).await;
        match inserted {
            Ok(1) => {}
            // 128 random bits never collide in practice; refuse rather than
            // overwrite if they ever do.
            Ok(_) => {
                self.forget_pending(&id).await;
                return Err(Error::Conflict);
            }
            Err(error) => {
                self.forget_pending(&id).await;
                return Err(error);
            }
        }
        self.emit_after(encode(&Event::session(EventKind::SessionCreated, record))?)
            .await;
        Ok(())
    }

    /// Compare-and-swap of a session on a cluster: steps 3 and 4 of this
    /// module's order (the caller indexed it). `event` is the encoded event
    /// of `change`.
    pub(super) async fn replace_on_cluster(
        &self,
        scripts: &Scripts,
        record: &SessionRecord,
        change: EventKind,
        data: String,
        event: String,
    ) -> Result<bool> {
        let key = session_key(record.session.id);
        let expected = record.revision.saturating_sub(1);
        let evict_at = record.evict_at().unix_ms();
        let (replaced, confirmed) = match &self.confirmation {
            Some(confirmation)
                if matches!(
                    change,
                    EventKind::SessionRevoked | EventKind::SessionAuthorized
                ) =>
            {
                // EVAL, not EVALSHA: the pipeline with WAIT must not need a
                // retry after NOSCRIPT. Routed, as a whole, to the node that
                // owns the session's slot, so WAIT counts that node's
                // replicas.
                let mut eval = redis::cmd("EVAL");
                eval.arg(SESSION_REPLACE)
                    .arg(1)
                    .arg(&key)
                    .arg(expected)
                    .arg(record.revision)
                    .arg(data)
                    .arg(evict_at);
                self.write_and_wait::<i64>(confirmation, eval).await?
            }
            _ => {
                let mut replace = scripts.replace.key(&key);
                replace
                    .arg(expected)
                    .arg(record.revision)
                    .arg(data)
                    .arg(evict_at);
                let mut connection = self.connection();
                let replaced = self.call(replace.invoke_async(&mut connection)).await?;
                (replaced, Ok(()))
            }
        };
        if replaced != 1 {
            return Ok(false);
        }
        // The change stands whether or not replicas confirmed it: its event
        // goes out either way, or a retry (which finds nothing to change)
        // would leave the feed without it.
        let id = record.session.id.to_string();
        tokio::join!(self.forget_pending(&id), self.emit_after(event));
        confirmed.map(|()| true)
    }

    /// Runs `command key args…` on a cluster, then appends `event` as
    /// `when` says: the write and its event are two steps.
    pub(super) async fn write_then_emit<T: redis::FromRedisValue>(
        &self,
        key: &str,
        event: &Event,
        when: Emit,
        command: &str,
        args: &[impl redis::ToRedisArgs + Sync],
    ) -> Result<T> {
        let event = encode(event)?;
        let mut write = redis::cmd(command);
        write.arg(key);
        for arg in args {
            write.arg(arg);
        }
        let mut connection = self.connection();
        let reply: Value = self.call(write.query_async(&mut connection)).await?;
        let changed = !matches!(reply, Value::Nil | Value::Int(0));
        if matches!(when, Emit::Always) || changed {
            self.emit_after(event).await;
        }
        T::from_redis_value(reply).map_err(|error| Error::CorruptRecord(Box::new(error)))
    }

    /// Appends an already encoded event after the change it records. A
    /// failure loses the event, not the change: it is logged and counted,
    /// and the caller is answered as the change deserves.
    pub(super) async fn emit_after(&self, event: String) {
        let mut invocation = self.publish.key(EVENT_STREAM_KEY);
        invocation
            .key(EVENT_COUNTER_KEY)
            .arg(event)
            .arg(self.event_retention);
        let mut connection = self.connection();
        if let Err(error) = self
            .call(invocation.invoke_async::<i64>(&mut connection))
            .await
        {
            metrics::counter!("sigil_store_events_lost_total", "store" => "redis").increment(1);
            tracing::warn!(%error, "a change was stored but its event was not appended");
        }
    }

    /// Takes a session out of the pending index. Best effort: a left-over
    /// entry only counts against the cap until the nonce would have
    /// expired.
    async fn forget_pending(&self, id: &str) {
        let mut connection = self.connection();
        let removed =
            tokio::time::timeout(self.timeout, connection.zrem::<_, _, i64>(PENDING_KEY, id)).await;
        if let Ok(Err(error)) = removed {
            tracing::debug!(%error, "could not prune the pending index");
        }
    }
}
