//! Flags and environment variables shared by every binary. Each binary
//! flattens [`CommonArgs`] into its own `clap::Parser`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use sigil_domain::{AdminKey, SessionPolicy};
use sigil_jwt::MasterKey;

use crate::{AdminKeys, Limits};

/// Everything a Sigil service is configured with, beside its listen address.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub log: LogArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub store: StoreArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub admin: AdminArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub session: SessionArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub tls: crate::TlsArgs,
    /// Refuse requests larger than this many bytes with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SIGIL_MAX_REQUEST_BYTES", default_value_t = 100 * 1024)]
    pub max_request_bytes: usize,
    /// Handle at most this many calls at once; more get RESOURCE_EXHAUSTED
    /// (reason OVERLOADED) at once instead of queueing. Health checks are
    /// always answered.
    #[arg(long, env = "SIGIL_MAX_CONCURRENT_REQUESTS", default_value_t = 4096)]
    pub max_concurrent_requests: usize,
    /// Answer DEADLINE_EXCEEDED for a call still running after this long (a
    /// caller's shorter gRPC deadline wins).
    #[arg(long, env = "SIGIL_MAX_REQUEST_TIME", default_value = "10s", value_parser = humantime::parse_duration)]
    pub max_request_time: Duration,
    /// CreateSession calls one peer address may make per second (0: no
    /// limit). Over it: RESOURCE_EXHAUSTED, reason RATE_LIMITED, with
    /// RetryInfo.
    #[arg(
        long,
        env = "SIGIL_CREATE_SESSION_RATE_PER_PEER",
        default_value_t = 1_000
    )]
    pub create_session_rate_per_peer: u32,
    /// CreateSession calls all callers together may make per second (0: no
    /// limit).
    #[arg(long, env = "SIGIL_CREATE_SESSION_RATE", default_value_t = 10_000)]
    pub create_session_rate: u32,
    /// Refuse batch calls (BatchWhoAmI, BatchVerifyTokens) with more entries
    /// than this with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SIGIL_MAX_BATCH_SIZE", default_value_t = 1000)]
    pub max_batch_size: usize,
    /// Answer at most this many batch entries (of BatchWhoAmI,
    /// BatchVerifyTokens, ValidateTokens and `/edge/validate` together) at
    /// once; later batches wait their turn before reading the store.
    #[arg(
        long,
        env = "SIGIL_MAX_BATCH_ENTRIES_IN_FLIGHT",
        default_value_t = crate::DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT
    )]
    pub max_batch_entries_in_flight: usize,
    /// Also serve Prometheus `/metrics` on this address (it is always on the
    /// gRPC port too), so scrapes need not reach the client-facing port.
    #[arg(long, env = "SIGIL_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Also answer gRPC health alone on this address, in plaintext even
    /// with TLS on: for probes that speak no TLS, as the kubelet's.
    #[arg(long, env = "SIGIL_HEALTH_LISTEN")]
    pub health_listen: Option<std::net::SocketAddr>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub workers: WorkerArgs,
}

/// How many workers serve calls, and how they share them.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerArgs {
    /// Workers serving calls. Unset: one per CPU this process may use (its
    /// CPU affinity, or a cgroup CPU limit rounded down).
    #[arg(long, env = "SIGIL_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
    /// How more than one worker share the work: `per-core` deals each
    /// connection to the worker with the fewest open, which serves it on a
    /// single-threaded runtime with a Redis connection of its own;
    /// `work-stealing` is Tokio's multi-thread runtime, which spreads even
    /// one connection's calls over every worker, at more CPU per call.
    #[arg(long, env = "SIGIL_SCHEDULER", value_enum, default_value_t = Scheduler::PerCore)]
    pub scheduler: Scheduler,
}

/// How several workers share the work (`--scheduler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduler {
    /// Each worker serves the connections dealt to it.
    #[default]
    PerCore,
    /// Tokio's multi-thread runtime.
    WorkStealing,
}

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log as human-readable lines or as JSON objects.
    #[arg(long, env = "SIGIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to log, as a tracing filter (`info`, `sigil=debug,info`...).
    #[arg(long, env = "SIGIL_LOG", default_value = "info")]
    pub log_filter: String,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// The session store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Redis to keep sessions in: `redis://[[user]:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, `redis+cluster://[[user]:password@]host1[:port],host2[:port],…`
    /// (or `rediss+cluster://…`) for a Redis Cluster through these seed
    /// nodes. Without it, sessions live in this process's memory only.
    #[arg(long, env = "SIGIL_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM file of the certificates to trust for a TLS Redis (`rediss://`)
    /// instead of the system's roots.
    #[arg(long, env = "SIGIL_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Give up on one Redis call after this long and answer UNAVAILABLE.
    #[arg(long, env = "SIGIL_REDIS_TIMEOUT", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub redis_timeout: Duration,
    /// About how many events the event stream keeps; a watcher resuming
    /// from an older cursor gets OUT_OF_RANGE.
    #[arg(long, env = "SIGIL_EVENT_RETENTION", default_value_t = sigil_store::DEFAULT_EVENT_RETENTION)]
    pub event_retention: usize,
    /// Most sessions waiting for their nonce at once; CreateSession beyond
    /// it gets RESOURCE_EXHAUSTED (0: no limit).
    #[arg(long, env = "SIGIL_MAX_PENDING_SESSIONS", default_value_t = sigil_store::DEFAULT_MAX_PENDING_SESSIONS)]
    pub max_pending_sessions: usize,
    /// Acknowledge a revocation, a used nonce or `jti`, or an API token
    /// revocation only once this many Redis replicas hold it (`WAIT`); 0:
    /// once the primary has it.
    #[arg(long, env = "SIGIL_REDIS_CONFIRM_REPLICAS", default_value_t = 0)]
    pub redis_confirm_replicas: usize,
    /// Acknowledge the same writes only once the Redis primary has fsynced
    /// them to its append-only file (`WAITAOF 1 0`). Needs Redis 7.2 or
    /// newer with `appendonly yes`; checked at startup.
    #[arg(long, env = "SIGIL_REDIS_CONFIRM_AOF")]
    pub redis_confirm_aof: bool,
    /// How long to wait for those replicas (and for the fsync) before
    /// answering UNAVAILABLE.
    #[arg(long, env = "SIGIL_REDIS_CONFIRM_TIMEOUT", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub redis_confirm_timeout: Duration,
    /// How often to check that the store answers, for gRPC health.
    #[arg(long, env = "SIGIL_HEALTH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,
}

impl StoreArgs {
    /// How to reach Redis, if a URL is given; reads the CA file.
    pub fn redis_config(&self) -> Result<Option<sigil_store::RedisConfig>, String> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let tls_ca = match &self.redis_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|error| {
                format!(
                    "cannot read SIGIL_REDIS_CA_FILE {}: {error}",
                    path.display()
                )
            })?),
            None => None,
        };
        Ok(Some(sigil_store::RedisConfig {
            url: url.clone(),
            tls_ca,
            timeout: self.redis_timeout,
            event_retention: self.event_retention,
            max_pending_sessions: self.max_pending_sessions,
            confirm_replicas: self.redis_confirm_replicas,
            confirm_aof: self.redis_confirm_aof,
            confirm_timeout: self.redis_confirm_timeout,
        }))
    }
}

/// Admin keys.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Admin keys, comma separated, each at least 24 visible characters.
    #[arg(
        long,
        env = "SIGIL_ADMIN_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_keys: Vec<String>,
    /// A file of admin keys, one per line; `#` starts a comment.
    #[arg(long, env = "SIGIL_ADMIN_KEYS_FILE")]
    pub admin_keys_file: Option<PathBuf>,
    /// Admin calls one admin key may make per second, in bursts of as many
    /// (0: no limit). Over it: RESOURCE_EXHAUSTED, reason RATE_LIMITED,
    /// with RetryInfo. Every AuthorizeSession is an admin call, so set it
    /// above your peak login rate.
    #[arg(long, env = "SIGIL_ADMIN_RATE_PER_KEY", default_value_t = 0)]
    pub admin_rate_per_key: u32,
}

/// Session lifetimes.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// How long a new session's nonce lasts when the request does not say.
    #[arg(long, env = "SIGIL_PENDING_TTL", default_value = "3m", value_parser = humantime::parse_duration)]
    pub pending_ttl: Duration,
    /// The longest a caller may ask a nonce to last.
    #[arg(long, env = "SIGIL_MAX_PENDING_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_pending_ttl: Duration,
    /// How long an authorized session lasts when the request does not say.
    #[arg(long, env = "SIGIL_SESSION_LIFESPAN", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_lifespan: Duration,
    /// The longest an authorized or extended session may last from now.
    #[arg(long, env = "SIGIL_MAX_SESSION_LIFESPAN", default_value = "30days", value_parser = humantime::parse_duration)]
    pub max_session_lifespan: Duration,
    /// Extend a session only when it expires within this long (Ory Kratos'
    /// `earliest_possible_extend`); earlier, ExtendSession returns it
    /// unchanged with `extended: false`. Unset: extend any time.
    #[arg(long, env = "SIGIL_EARLIEST_POSSIBLE_EXTEND", value_parser = humantime::parse_duration)]
    pub earliest_possible_extend: Option<Duration>,
    /// How long a revoked session stays visible to GetSession and
    /// ListSessions after its revocation (at most until its expiry).
    #[arg(long, env = "SIGIL_REVOKED_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub revoked_retention: Duration,
}

/// JWT signing.
#[derive(Debug, Clone, Args)]
pub struct JwtArgs {
    /// The master key sealing signing keys and HS256 secrets at rest: 32
    /// bytes in base64 (`openssl rand -base64 32`). Without it, JWT calls
    /// answer FAILED_PRECONDITION. Every issuer and validator of a cluster
    /// needs the same key.
    #[arg(long, env = "SIGIL_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// The longest lifetime a token template may give its tokens.
    #[arg(long, env = "SIGIL_MAX_TOKEN_LIFETIME", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_token_lifetime: Duration,
}

impl JwtArgs {
    /// The master key, if configured and well formed.
    pub fn master_key(&self) -> Result<Option<MasterKey>, String> {
        self.master_key
            .as_deref()
            .map(|text| {
                MasterKey::from_base64(text).map_err(|why| format!("SIGIL_MASTER_KEY: {why}"))
            })
            .transpose()
    }
}

impl CommonArgs {
    /// The request limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_request_bytes: self.max_request_bytes,
            max_concurrent_requests: self.max_concurrent_requests.max(1),
            max_request_time: self.max_request_time,
            max_batch_size: self.max_batch_size,
            max_batch_entries_in_flight: self.max_batch_entries_in_flight.max(1),
        }
    }
}

impl SessionArgs {
    /// The policy, if the lifetimes make sense together.
    pub fn policy(&self) -> Result<SessionPolicy, String> {
        let policy = SessionPolicy {
            default_pending_ttl: self.pending_ttl,
            max_pending_ttl: self.max_pending_ttl,
            default_lifespan: self.session_lifespan,
            max_lifespan: self.max_session_lifespan,
            earliest_possible_extend: self.earliest_possible_extend,
            revoked_retention: self.revoked_retention,
        };
        if policy.default_pending_ttl < Duration::from_secs(1) {
            return Err("--pending-ttl must be at least 1s".into());
        }
        if policy.default_pending_ttl > policy.max_pending_ttl {
            return Err("--pending-ttl must not exceed --max-pending-ttl".into());
        }
        if policy.default_lifespan.is_zero() || policy.default_lifespan > policy.max_lifespan {
            return Err(
                "--session-lifespan must be positive and not exceed --max-session-lifespan".into(),
            );
        }
        Ok(policy)
    }
}

impl AdminArgs {
    /// The configured admin keys, from the flag and the file.
    pub fn keys(&self) -> Result<AdminKeys, String> {
        let mut texts: Vec<String> = self
            .admin_keys
            .iter()
            .map(|key| key.trim().to_owned())
            .collect();
        if let Some(path) = &self.admin_keys_file {
            let contents = std::fs::read_to_string(path).map_err(|error| {
                format!("cannot read --admin-keys-file {}: {error}", path.display())
            })?;
            texts.extend(
                contents
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let keys = texts
            .iter()
            .enumerate()
            .filter(|(_, text)| !text.is_empty())
            .map(|(index, text)| {
                AdminKey::from_configured(text)
                    .map_err(|why| format!("admin key #{}: {why}", index + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AdminKeys::new(keys).with_rate_per_key(self.admin_rate_per_key))
    }
}
