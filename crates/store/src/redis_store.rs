use std::{
    future::Future,
    sync::{Arc, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use redis::{AsyncCommands, Script, ToRedisArgs};
use sha2::{Digest, Sha256};
use sigil_domain::{Error, Event, EventKind, Result, SessionId, SessionRecord, Subject, Timestamp};
use sigil_jwt::{StoredSigningKey, StoredTemplate};
use tokio::sync::watch;

use crate::{
    FeedState, JwtStore, SessionStore, SubjectPage, id_of_member, index_member, signing_key_event,
    template_event,
};

/// Every token template, a hash of name → JSON.
const TEMPLATES_KEY: &str = "sigil:{jwt}:templates";
/// Every signing key, a hash of kid → JSON (private key sealed).
const SIGNING_KEYS_KEY: &str = "sigil:{jwt}:keys";
/// Sessions waiting for their nonce, a sorted set of id by the nonce's
/// expiry (Unix ms): counted to cap them.
const PENDING_KEY: &str = "sigil:{pending}:sessions";

mod api_tokens;
mod cluster;
mod confirm;
mod connection;
mod events;
mod tracking;

use confirm::Confirmation;
pub use connection::RedisConfigError;
use connection::{Connection, Target};
use events::{EVENT_COUNTER_KEY, EVENT_STREAM_KEY};

/// Appends an event to the feed; the prelude of every script that writes
/// one, so a change and its event are one atomic step. Events are numbered
/// by a counter, without gaps, and the stream keeps about `maxlen`.
const EMIT: &str = r"
local function emit(stream, counter, event, maxlen)
  local cursor = redis.call('INCR', counter)
  local now = redis.call('TIME')
  local at = now[1] * 1000 + math.floor(now[2] / 1000)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen,
    string.format('%d-0', cursor), 'at', string.format('%d', at),
    'event', event)
end
";

/// Writes a new record unless the id is taken (0) or the pending index
/// is full (-1). KEYS the record, the event stream, the event counter, the
/// pending index; ARGV revision, JSON, eviction time (Unix ms), event,
/// stream length, session id, most pending sessions (0: no limit).
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[7] ~= '0' then
  local now = redis.call('TIME')
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now[1] * 1000)
  if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[7]) then return -1 end
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[6])
  redis.call('PEXPIREAT', KEYS[4], ARGV[3], 'GT')
  redis.call('PEXPIREAT', KEYS[4], ARGV[3], 'NX')
end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
emit(KEYS[2], KEYS[3], ARGV[4], ARGV[5])
return 1
";

/// Compare-and-swap on the revision; the session leaves the pending index
/// (it was authorized or revoked). KEYS the record, the event stream, the
/// event counter, the pending index; ARGV expected revision, new revision,
/// JSON, eviction time (Unix ms), event, stream length, session id.
const REPLACE: &str = r"
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[7])
emit(KEYS[2], KEYS[3], ARGV[5], ARGV[6])
return 1
";

/// Runs one write command on KEYS[1] and publishes its event: always, or
/// only if the command changed something (a non-zero, non-nil reply).
/// KEYS the written key, the event stream, the event counter; ARGV event,
/// stream length, `always` or `changed`, command, its arguments after the
/// key.
const WRITE_AND_EMIT: &str = r"
local reply = redis.call(ARGV[4], KEYS[1], unpack(ARGV, 5))
if ARGV[3] == 'always' or (reply and reply ~= 0) then
  emit(KEYS[2], KEYS[3], ARGV[1], ARGV[2])
end
return reply
";

/// Publishes an event on its own. KEYS the event stream, the event
/// counter; ARGV event, stream length.
const PUBLISH: &str = r"
emit(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1
";

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS),
    /// `redis+cluster://[[user]:password@]host1[:port],host2[:port],…` or
    /// `rediss+cluster://…` (a Redis Cluster, through these seed nodes).
    pub url: String,
    /// PEM certificates to trust for a TLS URL instead of the system's
    /// roots.
    pub tls_ca: Option<Vec<u8>>,
    /// Give up on one store call after this long and answer UNAVAILABLE.
    pub timeout: Duration,
    /// About how many events the event stream keeps.
    pub event_retention: usize,
    /// Most sessions waiting for their nonce at once (0: no limit).
    pub max_pending_sessions: usize,
    /// Replicas that must hold a revocation, a used nonce or `jti`, or an
    /// API token revocation before it is acknowledged (`WAIT`); 0
    /// acknowledges once the primary has it.
    pub confirm_replicas: usize,
    /// Whether the same writes are acknowledged only once the primary has
    /// fsynced them to its append-only file (`WAITAOF 1 0`; Redis 7.2+).
    pub confirm_aof: bool,
    /// How long to wait for those replicas, and for the fsync, before
    /// answering UNAVAILABLE.
    pub confirm_timeout: Duration,
}

/// Workers beyond this many share connections.
const MAX_WORKER_CONNECTIONS: usize = 64;

/// Sessions in Redis, shared by every service of a Sigil cluster.
///
/// Layout: `sigil:{sess_…}:session` is a hash of `rev` and `data` (the
/// record as JSON) that Redis expires at the session's expiry;
/// `sigil:{subj_…}:sessions` is a sorted set indexing a subject's sessions;
/// `sigil:{pending}:sessions` counts sessions waiting for their nonce (a
/// sorted set by nonce expiry), to cap them;
/// `sigil:{jwt}:templates` and `sigil:{jwt}:keys` are hashes of token
/// templates and signing keys; `sigil:{jti_…}:used` marks a consumed token
/// id until the token expires.
/// The braces are hash tags: each key's operations stay within one slot, so
/// the same layout runs on Redis Cluster. On a single Redis a change and its
/// event are one script; on a cluster, where they live in different slots,
/// they are separate steps (see `cluster.rs`).
#[derive(Clone)]
pub struct RedisStore {
    target: Target,
    /// The connection of worker 0, and of every thread that is no worker.
    connection: Connection,
    /// The connections of workers 1 and on (`set_worker_thread`), each
    /// made on its worker's first call, so that it runs on that worker's
    /// thread.
    worker_connections: Arc<[OnceLock<Connection>]>,
    timeout: Duration,
    event_retention: usize,
    max_pending_sessions: usize,
    insert: Script,
    replace: Script,
    write_and_emit: Script,
    publish: Script,
    feed: Arc<OnceLock<Arc<watch::Sender<FeedState>>>>,
    confirmation: Option<Confirmation>,
    cluster: Option<cluster::Scripts>,
}

impl RedisStore {
    /// A store that connects lazily and reconnects by itself: it starts even
    /// while Redis is down, answering UNAVAILABLE until Redis is back.
    pub fn new(config: &RedisConfig) -> Result<Self, RedisConfigError> {
        let target = Target::parse(&config.url, config.tls_ca.as_deref())?;
        let confirmation = Confirmation::new(&target, config)?;
        Ok(RedisStore {
            confirmation,
            connection: target.lazy(config.timeout, config.timeout)?,
            worker_connections: (1..MAX_WORKER_CONNECTIONS)
                .map(|_| OnceLock::new())
                .collect(),
            cluster: target.is_cluster().then(cluster::Scripts::new),
            target,
            timeout: config.timeout,
            event_retention: config.event_retention.max(1),
            max_pending_sessions: config.max_pending_sessions,
            insert: Script::new(&format!("{EMIT}{INSERT}")),
            replace: Script::new(&format!("{EMIT}{REPLACE}")),
            write_and_emit: Script::new(&format!("{EMIT}{WRITE_AND_EMIT}")),
            publish: Script::new(&format!("{EMIT}{PUBLISH}")),
            feed: Arc::default(),
        })
    }

    /// The connection of the worker calling: Redis multiplexes calls over
    /// each.
    fn connection(&self) -> Connection {
        match crate::worker::current_worker() {
            0 => self.connection.clone(),
            worker => {
                let slot = (worker - 1) % self.worker_connections.len();
                self.worker_connections[slot]
                    .get_or_init(|| {
                        // Only a URL `new` already accepted gets here.
                        self.target
                            .lazy(self.timeout, self.timeout)
                            .unwrap_or_else(|_| self.connection.clone())
                    })
                    .clone()
            }
        }
    }

    /// Runs one store call under the deadline; any failure is UNAVAILABLE.
    /// Every call is timed, and failures counted, as `sigil_store_*`.
    async fn call<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        self.call_within(self.timeout, call).await
    }

    /// [`call`](Self::call) with a deadline of its own.
    async fn call_within<T>(
        &self,
        deadline: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Error::Unavailable(Box::new(error))),
            Err(elapsed) => Err(Error::Unavailable(Box::new(elapsed))),
        };
        metrics::histogram!("sigil_store_call_duration_seconds", "store" => "redis")
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("sigil_store_errors_total", "store" => "redis").increment(1);
        }
        result
    }

    /// Adds `record` to its subject's index, before the record itself is
    /// written: an entry without a record is skipped when listing, while a
    /// record missing from the index would escape RevokeSubjectSessions.
    async fn index(&self, record: &SessionRecord) -> Result<()> {
        let Some(subject) = &record.session.subject else {
            return Ok(());
        };
        let key = subject_key(subject);
        let evict_at = record.evict_at().unix_ms();
        let mut pipe = redis::pipe();
        pipe.zadd(&key, index_member(record), 0)
            .ignore()
            // NX sets a first expiry, GT only ever moves it later: the index
            // lives as long as its longest-lived session.
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(evict_at)
            .arg("NX")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(evict_at)
            .arg("GT")
            .ignore();
        let mut connection = self.connection();
        self.call(pipe.query_async::<()>(&mut connection)).await
    }
}

impl RedisStore {
    /// The `data` field of each of the sessions `ids`, in the same order,
    /// `None` where there is no record. Records are hashes, which `MGET`
    /// cannot read: on a single Redis one pipeline of `HGET`s, one round
    /// trip. On a cluster each session has a slot of its own, so a
    /// pipeline cannot span them: one `HGET` per session, all sent at once;
    /// the cluster client writes those bound for one node back to back on
    /// its one connection to it, so the batch waits about one round trip
    /// of the slowest node, and answers come back in request order.
    async fn records_data(&self, ids: &[SessionId]) -> Result<Vec<Option<String>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if self.cluster.is_some() {
            let reads = ids.iter().map(|id| {
                let mut connection = self.connection();
                let key = session_key(*id);
                async move { connection.hget::<_, _, Option<String>>(key, "data").await }
            });
            return self.call(futures_util::future::try_join_all(reads)).await;
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(session_key(*id), "data");
        }
        let mut connection = self.connection();
        self.call(pipe.query_async(&mut connection)).await
    }

    /// Checks once that Redis accepts the URL's credentials, for a clear
    /// startup error instead of a service that answers UNAVAILABLE forever.
    /// A Redis that cannot be reached now is not an error: the store
    /// connects when it comes up.
    pub async fn check_credentials(&self) -> Result<(), RedisConfigError> {
        // A connection made now, not the shared lazy one: a cluster
        // client's lazy connection reports a refused password only as "no
        // connection".
        let check = async {
            let mut connection = self.target.dedicated(self.timeout, self.timeout).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map(drop)
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if refuses_credentials(&error) => Err(RedisConfigError::refused(&error)),
            Ok(Err(error)) => {
                tracing::warn!(
                    category = error.category(),
                    "Redis does not answer yet; calls get UNAVAILABLE until it does"
                );
                Ok(())
            }
            Err(_) => {
                tracing::warn!("Redis does not answer yet; calls get UNAVAILABLE until it does");
                Ok(())
            }
        }
    }
}

/// Whether `error` says the credentials are wrong or lack a permission
/// Sigil needs, rather than that Redis is out of reach.
fn refuses_credentials(error: &redis::RedisError) -> bool {
    // A cluster client wraps the cause in "Failed to create initial
    // connections": only its text still names it.
    let text = error.to_string();
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        || ["WRONGPASS", "NOAUTH", "NOPERM", "AuthenticationFailed"]
            .iter()
            .any(|cause| text.contains(cause))
}

/// When [`RedisStore::write_and_emit`] publishes its event.
#[derive(Clone, Copy)]
enum Emit {
    /// Whatever the command answers.
    Always,
    /// Only if the command changed something (a non-zero, non-nil reply).
    IfChanged,
}

impl Emit {
    /// How [`WRITE_AND_EMIT`] takes it.
    fn as_arg(self) -> &'static str {
        match self {
            Emit::Always => "always",
            Emit::IfChanged => "changed",
        }
    }
}

impl RedisStore {
    /// Runs `command key args…` and publishes `event` in the same atomic
    /// step, as `when` says.
    async fn write_and_emit<T: redis::FromRedisValue>(
        &self,
        key: &str,
        event: &Event,
        when: Emit,
        command: &str,
        args: &[impl redis::ToRedisArgs + Sync],
    ) -> Result<T> {
        if self.cluster.is_some() {
            return self.write_then_emit(key, event, when, command, args).await;
        }
        let mut invocation = self.write_and_emit.key(key);
        invocation
            .key(EVENT_STREAM_KEY)
            .key(EVENT_COUNTER_KEY)
            .arg(encode(event)?)
            .arg(self.event_retention)
            .arg(when.as_arg())
            .arg(command);
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection();
        self.call(invocation.invoke_async(&mut connection)).await
    }
}

fn session_key(id: SessionId) -> String {
    format!("sigil:{{{id}}}:session")
}

/// The session whose record `key` is; `None` for any other key.
fn session_of_key(key: &[u8]) -> Option<SessionId> {
    let id = key.strip_prefix(b"sigil:{")?.strip_suffix(b"}:session")?;
    std::str::from_utf8(id).ok()?.parse().ok()
}

fn subject_key(subject: &Subject) -> String {
    // Hashed, so any character a subject may hold is safe inside a key and
    // its hash tag.
    let digest = Sha256::digest(subject.as_str().as_bytes());
    format!("sigil:{{subj_{}}}:sessions", hex::encode(&digest[..16]))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| Error::CorruptRecord(Box::new(error)))
}

fn decode<T: serde::de::DeserializeOwned>(data: &str) -> Result<T> {
    serde_json::from_str(data).map_err(|error| Error::CorruptRecord(Box::new(error)))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(&self, record: &SessionRecord) -> Result<()> {
        let data = encode(record)?;
        self.index(record).await?;
        if let Some(scripts) = &self.cluster {
            return self.insert_on_cluster(scripts, record, data).await;
        }
        let mut connection = self.connection();
        let event = encode(&Event::session(EventKind::SessionCreated, record))?;
        let mut invocation = self.insert.key(session_key(record.session.id));
        invocation
            .key(EVENT_STREAM_KEY)
            .key(EVENT_COUNTER_KEY)
            .key(PENDING_KEY)
            .arg(record.revision)
            .arg(data)
            .arg(record.evict_at().unix_ms())
            .arg(event)
            .arg(self.event_retention)
            .arg(record.session.id.to_string())
            .arg(self.max_pending_sessions);
        let inserted: i64 = self.call(invocation.invoke_async(&mut connection)).await?;
        match inserted {
            1 => Ok(()),
            -1 => Err(Error::PendingSessionsFull {
                limit: self.max_pending_sessions,
            }),
            // 128 random bits never collide in practice; refuse rather than
            // overwrite if they ever do.
            _ => Err(Error::Conflict),
        }
    }

    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>> {
        let mut connection = self.connection();
        let data: Option<String> = self.call(connection.hget(session_key(id), "data")).await?;
        data.as_deref().map(decode).transpose()
    }

    async fn get_many(&self, ids: &[SessionId]) -> Result<Vec<Option<SessionRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.records_data(ids).await?;
        all.iter()
            .map(|data| data.as_deref().map(decode).transpose())
            .collect()
    }

    async fn replace(&self, record: &SessionRecord, change: EventKind) -> Result<bool> {
        let data = encode(record)?;
        let event = encode(&Event::session(change, record))?;
        self.index(record).await?;
        if let Some(scripts) = &self.cluster {
            return self
                .replace_on_cluster(scripts, record, change, data, event)
                .await;
        }
        let keys = [
            session_key(record.session.id),
            EVENT_STREAM_KEY.to_owned(),
            EVENT_COUNTER_KEY.to_owned(),
            PENDING_KEY.to_owned(),
        ];
        let args = [
            record.revision.saturating_sub(1).to_redis_args(),
            record.revision.to_redis_args(),
            data.to_redis_args(),
            record.evict_at().unix_ms().to_redis_args(),
            event.to_redis_args(),
            self.event_retention.to_redis_args(),
            record.session.id.to_string().to_redis_args(),
        ]
        .concat();
        if let Some(confirmation) = &self.confirmation
            && matches!(
                change,
                EventKind::SessionRevoked | EventKind::SessionAuthorized
            )
        {
            // EVAL, not EVALSHA: the pipeline with WAIT must not need a
            // retry after NOSCRIPT.
            let mut eval = redis::cmd("EVAL");
            eval.arg(format!("{EMIT}{REPLACE}"))
                .arg(keys.len())
                .arg(&keys)
                .arg(&args);
            let replaced: i64 = self.confirmed(confirmation, eval).await?;
            return Ok(replaced == 1);
        }
        let mut invocation = self.replace.prepare_invoke();
        for key in &keys {
            invocation.key(key);
        }
        for arg in &args {
            invocation.arg(arg);
        }
        let mut connection = self.connection();
        self.call(invocation.invoke_async(&mut connection)).await
    }

    async fn confirm(&self, record: &SessionRecord) -> Result<()> {
        let Some(confirmation) = &self.confirmation else {
            return Ok(());
        };
        // Rewriting the expiry is a write that replicates after the change
        // being confirmed: once replicas hold it, they hold the change.
        let mut touch = redis::cmd("PEXPIREAT");
        touch
            .arg(session_key(record.session.id))
            .arg(record.evict_at().unix_ms());
        self.confirmed::<i64>(confirmation, touch).await.map(drop)
    }

    async fn subject_sessions(
        &self,
        subject: &Subject,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SubjectPage> {
        let key = subject_key(subject);
        let start = cursor.map_or_else(|| "-".to_owned(), |cursor| format!("({cursor}"));
        let mut connection = self.connection();
        let members: Vec<String> = self
            .call(
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(start)
                    .arg("+")
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut connection),
            )
            .await?;
        let mut page = SubjectPage {
            next_cursor: (members.len() == limit)
                .then(|| members.last().cloned())
                .flatten(),
            records: Vec::with_capacity(members.len()),
        };
        if members.is_empty() {
            return Ok(page);
        }
        let ids: Vec<SessionId> = members
            .iter()
            .filter_map(|member| id_of_member(member))
            .collect();
        let mut found = self.records_data(&ids).await?.into_iter();
        // Members that name no session read as nothing, in their place.
        let records: Vec<Option<String>> = members
            .iter()
            .map(|member| id_of_member(member).and_then(|_| found.next().flatten()))
            .collect();
        let mut stale = Vec::new();
        for (member, data) in members.iter().zip(records) {
            match data
                .filter(|data| !data.is_empty())
                .as_deref()
                .map(decode::<SessionRecord>)
                .transpose()?
            {
                Some(record) if record.session.subject.as_ref() == Some(subject) => {
                    page.records.push(record)
                }
                // Expired, or authorized under another subject.
                _ => stale.push(member.clone()),
            }
        }
        if !stale.is_empty() {
            // Cleaning the index is best effort: a failure here costs a
            // skipped entry on the next read, not a wrong answer.
            let cleanup: redis::RedisResult<()> = self.connection().zrem(&key, stale).await;
            if let Err(error) = cleanup {
                tracing::debug!(%error, "could not prune the subject index");
            }
        }
        Ok(page)
    }

    async fn ping(&self) -> Result<()> {
        let mut connection = self.connection();
        self.call(redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map(drop)
    }
}

#[async_trait]
impl JwtStore for RedisStore {
    async fn create_template(&self, template: &StoredTemplate) -> Result<bool> {
        let event = template_event(EventKind::TemplatePut, &template.name);
        let args = [template.name.clone(), encode(template)?];
        let created: i64 = self
            .write_and_emit(TEMPLATES_KEY, &event, Emit::IfChanged, "HSETNX", &args)
            .await?;
        Ok(created == 1)
    }

    async fn replace_template(&self, template: &StoredTemplate) -> Result<()> {
        let event = template_event(EventKind::TemplatePut, &template.name);
        let args = [template.name.clone(), encode(template)?];
        self.write_and_emit::<i64>(TEMPLATES_KEY, &event, Emit::Always, "HSET", &args)
            .await
            .map(drop)
    }

    async fn template(&self, name: &str) -> Result<Option<StoredTemplate>> {
        let mut connection = self.connection();
        let data: Option<String> = self.call(connection.hget(TEMPLATES_KEY, name)).await?;
        data.as_deref().map(decode).transpose()
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        let mut connection = self.connection();
        let all: Vec<String> = self.call(connection.hvals(TEMPLATES_KEY)).await?;
        all.iter().map(|data| decode(data)).collect()
    }

    async fn delete_template(&self, name: &str) -> Result<bool> {
        let event = template_event(EventKind::TemplateDeleted, name);
        let deleted: i64 = self
            .write_and_emit(TEMPLATES_KEY, &event, Emit::IfChanged, "HDEL", &[name])
            .await?;
        Ok(deleted == 1)
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let mut connection = self.connection();
        let all: Vec<String> = self.call(connection.hvals(SIGNING_KEYS_KEY)).await?;
        all.iter().map(|data| decode(data)).collect()
    }

    async fn put_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        let args = [key.kid.clone(), encode(key)?];
        self.write_and_emit::<i64>(
            SIGNING_KEYS_KEY,
            &signing_key_event(key),
            Emit::Always,
            "HSET",
            &args,
        )
        .await
        .map(drop)
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        let event = Event {
            kid: Some(kid.to_owned()),
            ..Event::new(EventKind::SigningKeyRemoved)
        };
        self.write_and_emit::<i64>(SIGNING_KEYS_KEY, &event, Emit::IfChanged, "HDEL", &[kid])
            .await
            .map(drop)
    }

    async fn consume_jti(&self, jti: &str, expires_at: Timestamp) -> Result<bool> {
        // SET NX is the atomic test-and-set every validator replica shares;
        // the mark lives exactly as long as the token could be replayed.
        let mut mark = redis::cmd("SET");
        mark.arg(format!("sigil:{{jti_{jti}}}:used"))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(expires_at.unix_ms().max(1));
        if let Some(confirmation) = &self.confirmation {
            // Used by this call only once replicas hold the mark. Unconfirmed,
            // the mark stands on the primary all the same: the token is spent
            // and any later attempt, a retry included, is a replay. So at
            // most one caller ever hears "valid", even if a failover loses
            // the unconfirmed mark (then the first to come after it does).
            // A mark already there needs no confirmation: a refusal is safe
            // to lose.
            let (set, confirmed): (Option<String>, _) =
                self.write_and_wait(confirmation, mark).await?;
            return match set {
                Some(_) => confirmed.map(|()| true),
                None => Ok(false),
            };
        }
        let mut connection = self.connection();
        let set: Option<String> = self.call(mark.query_async(&mut connection)).await?;
        Ok(set.is_some())
    }
}
