//! Writes acknowledged only once replicas hold them
//! (`SIGIL_REDIS_CONFIRM_REPLICAS`): revocations, used nonces, used `jti`s
//! and API token revocations, the writes whose loss in a failover would
//! turn a refusal back into "valid".
//!
//! Each such write is sent, with `WAIT`, as one pipeline on a connection
//! kept for these writes: `WAIT` blocks the connection it is sent on, and
//! counts the replicas holding every earlier write *of that connection*.
//! On a cluster the pipeline goes to the master owning the written key's
//! slot, so `WAIT` counts that master's replicas.
//!
//! A write whose replicas did not confirm in time still stands on the
//! primary; the caller gets UNAVAILABLE. A retry that finds nothing left to
//! change must still make a write of its own before waiting (`WAIT` on a
//! connection that wrote nothing returns at once): see
//! [`RedisStore::confirm_by_writing`].

use std::time::Duration;

use redis::{FromRedisValue, Value};
use sigil_domain::{Error, Event, Result};

use super::{
    Connection, EMIT, Emit, RedisConfig, RedisConfigError, RedisStore, Target, WRITE_AND_EMIT,
    encode,
    events::{EVENT_COUNTER_KEY, EVENT_STREAM_KEY},
};

/// How long the marker a retried API token revocation writes lives: it
/// only needs to reach the replicas.
const MARKER_TTL_MS: u64 = 60_000;

/// Writes that must reach replicas, or the primary's disk, before they are
/// acknowledged: on a connection of their own, since `WAIT` and `WAITAOF`
/// count what holds every earlier write of the connection they are sent
/// on, and block it meanwhile.
#[derive(Clone)]
pub(super) struct Confirmation {
    connection: Connection,
    /// Replicas that must have received the write (`WAIT`); 0: none.
    replicas: usize,
    /// Whether the primary must have fsynced it to its append-only file
    /// (`WAITAOF 1 0`).
    aof: bool,
    /// How long each of those waits may take.
    timeout: Duration,
}

impl Confirmation {
    /// The confirmation `config` asks for, if any.
    pub(super) fn new(
        target: &Target,
        config: &RedisConfig,
    ) -> Result<Option<Confirmation>, RedisConfigError> {
        if config.confirm_replicas == 0 && !config.confirm_aof {
            return Ok(None);
        }
        let waits = u32::from(config.confirm_replicas > 0) + u32::from(config.confirm_aof);
        Ok(Some(Confirmation {
            connection: target.lazy(
                config.timeout,
                config.timeout + config.confirm_timeout * waits,
            )?,
            replicas: config.confirm_replicas,
            aof: config.confirm_aof,
            timeout: config.confirm_timeout,
        }))
    }

    /// The longest one confirmed write may take, its waits included.
    fn deadline(&self, timeout: Duration) -> Duration {
        let waits = u32::from(self.replicas > 0) + u32::from(self.aof);
        timeout + self.timeout * waits
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

impl RedisStore {
    /// Runs `write` and then `WAIT` on the confirming connection, in one
    /// round trip; UNAVAILABLE unless enough replicas acknowledged it in
    /// time. The write itself stands either way (a retry is idempotent).
    pub(super) async fn confirmed<T: redis::FromRedisValue>(
        &self,
        confirmation: &Confirmation,
        write: redis::Cmd,
    ) -> Result<T> {
        let (value, confirmed) = self.write_and_wait(confirmation, write).await?;
        confirmed.map(|()| value)
    }

    /// Runs `write` and then `WAIT` (and `WAITAOF`) as
    /// [`confirmed`](Self::confirmed) does, and answers the write's reply
    /// together with whether it is confirmed. On a cluster they go, as one
    /// pipeline, to the node that owns the written key's slot, so `WAIT`
    /// counts its replicas and `WAITAOF` its disk. A `WAITAOF` Redis
    /// refuses (`appendonly no`) is UNAVAILABLE, the write standing.
    pub(super) async fn write_and_wait<T: redis::FromRedisValue>(
        &self,
        confirmation: &Confirmation,
        write: redis::Cmd,
    ) -> Result<(T, Result<()>)> {
        let mut pipe = redis::pipe();
        pipe.add_command(write);
        if confirmation.replicas > 0 {
            pipe.cmd("WAIT")
                .arg(confirmation.replicas)
                .arg(confirmation.timeout_ms());
        }
        if confirmation.aof {
            pipe.cmd("WAITAOF")
                .arg(1)
                .arg(0)
                .arg(confirmation.timeout_ms());
        }
        let mut connection = confirmation.connection.clone();
        let replies: Vec<Value> = self
            .call_within(
                confirmation.deadline(self.timeout),
                pipe.query_async(&mut connection),
            )
            .await?;
        let mut replies = replies.into_iter();
        let corrupt = |error: redis::ParsingError| Error::CorruptRecord(Box::new(error));
        let value = T::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(corrupt)?;
        let mut unconfirmed = None;
        if confirmation.replicas > 0 {
            let acknowledged =
                usize::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(corrupt)?;
            if acknowledged < confirmation.replicas {
                unconfirmed = Some(format!(
                    "{acknowledged} of {} replicas confirmed the write",
                    confirmation.replicas
                ));
            }
        }
        if confirmation.aof {
            let (fsynced, _): (usize, usize) =
                FromRedisValue::from_redis_value(replies.next().unwrap_or(Value::Nil))
                    .map_err(corrupt)?;
            if fsynced < 1 && unconfirmed.is_none() {
                unconfirmed = Some("the primary did not fsync the write in time".to_owned());
            }
        }
        match unconfirmed {
            Some(why) => {
                metrics::counter!("sigil_store_errors_total", "store" => "redis").increment(1);
                Ok((value, Err(Error::Unavailable(why.into()))))
            }
            None => Ok((value, Ok(()))),
        }
    }

    /// Confirms whatever the primary holds under `hash_tag`'s slot, for a
    /// retry that finds nothing left to change (an API token already
    /// revoked): writes a short-lived marker in that slot and waits for it.
    /// The replication stream is ordered, so replicas holding the marker
    /// hold every earlier change of that primary, the one being retried
    /// included, whichever process made it.
    pub(super) async fn confirm_by_writing(
        &self,
        confirmation: &Confirmation,
        hash_tag: &str,
    ) -> Result<()> {
        let mut marker = redis::cmd("SET");
        marker
            .arg(format!("sigil:{{{hash_tag}}}:confirmed"))
            .arg(1)
            .arg("PX")
            .arg(MARKER_TTL_MS);
        self.confirmed::<()>(confirmation, marker).await
    }
}

impl RedisStore {
    /// [`write_and_emit`](RedisStore::write_and_emit) followed by `WAIT`:
    /// the command's reply, and whether enough replicas hold it. On one
    /// Redis the command and its event are one script, sent as `EVAL` (a
    /// pipeline with `WAIT` must not need a retry after NOSCRIPT); on a
    /// cluster the command is confirmed on its node and the event appended
    /// after it, confirmed or not (a retry finds nothing to change and
    /// would leave the feed without it).
    pub(super) async fn write_and_emit_confirmed<T: redis::FromRedisValue>(
        &self,
        confirmation: &Confirmation,
        key: &str,
        event: &Event,
        when: Emit,
        command: &str,
        args: &[impl redis::ToRedisArgs + Sync],
    ) -> Result<(T, Result<()>)> {
        let event = encode(event)?;
        if self.cluster.is_some() {
            let mut write = redis::cmd(command);
            write.arg(key);
            for arg in args {
                write.arg(arg);
            }
            let (reply, confirmed): (Value, _) = self.write_and_wait(confirmation, write).await?;
            if matches!(when, Emit::Always) || !matches!(reply, Value::Nil | Value::Int(0)) {
                self.emit_after(event).await;
            }
            let reply = T::from_redis_value(reply)
                .map_err(|error| Error::CorruptRecord(Box::new(error)))?;
            return Ok((reply, confirmed));
        }
        let mut eval = redis::cmd("EVAL");
        eval.arg(format!("{EMIT}{WRITE_AND_EMIT}"))
            .arg(3)
            .arg(key)
            .arg(EVENT_STREAM_KEY)
            .arg(EVENT_COUNTER_KEY)
            .arg(event)
            .arg(self.event_retention)
            .arg(when.as_arg())
            .arg(command);
        for arg in args {
            eval.arg(arg);
        }
        self.write_and_wait(confirmation, eval).await
    }
}

impl RedisStore {
    /// Checks once that Redis can confirm writes as configured: with
    /// `confirm_aof`, that every primary knows `WAITAOF` (Redis 7.2+) and
    /// has `appendonly yes`, for a clear startup error instead of every
    /// confirmed write answering UNAVAILABLE. A Redis that cannot be
    /// reached now is not an error: the check is left to the writes.
    pub async fn check_confirmation(&self) -> Result<(), RedisConfigError> {
        if !self
            .confirmation
            .as_ref()
            .is_some_and(|confirmation| confirmation.aof)
        {
            return Ok(());
        }
        // On a fresh connection, which wrote nothing, WAITAOF returns at
        // once; on a cluster the client sends it to every primary.
        let check = async {
            let mut connection = self.target.dedicated(self.timeout, self.timeout).await?;
            redis::cmd("WAITAOF")
                .arg(1)
                .arg(0)
                .arg(1)
                .query_async::<Value>(&mut connection)
                .await
                .map(drop)
        };
        let error = match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => {
                tracing::warn!("Redis does not answer yet; WAITAOF is not checked");
                return Ok(());
            }
        };
        let text = error.to_string();
        if text.contains("appendonly") {
            Err(RedisConfigError::new(
                "Redis has appendonly off, so WAITAOF cannot confirm a write: turn \
                 `appendonly yes` on, or this setting off",
            ))
        } else if text.to_ascii_lowercase().contains("unknown command") {
            Err(RedisConfigError::new(
                "this Redis has no WAITAOF: it needs Redis 7.2 or newer (or Valkey)",
            ))
        } else {
            tracing::warn!(
                category = error.category(),
                "Redis does not answer yet; WAITAOF is not checked"
            );
            Ok(())
        }
    }
}
