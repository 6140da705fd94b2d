//! The command line: `sigil-bench run` measures, `sigil-bench serve` is how
//! sigil-bench starts the servers it measures as processes of their own.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use sigil_runtime::CommonArgs;

use crate::{loopback::require_loopback, scenario::Scenario};

/// Most sessions `--sessions` may ask for.
pub const MAX_SESSIONS: usize = 1_000_000;

/// sigil-bench: Sigil's hot paths over real gRPC, each as a ratio of a
/// baseline server measured seconds before it on the same machine.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// sigil-bench's commands.
// Parsed once per process: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start (or reach) Sigil and a baseline server, run the scenarios, report.
    Run(RunArgs),
    /// Serve Sigil or the baseline on a loopback port until SIGTERM; `run`
    /// starts its servers this way.
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// How to measure.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Scenarios to run, in this order.
    #[arg(value_enum, default_values_t = Scenario::SIGIL)]
    pub scenarios: Vec<Scenario>,
    /// A running Sigil to measure, `http://127.0.0.1:<port>` (loopback
    /// only). Without it, sigil-bench starts its own.
    #[arg(long)]
    pub target: Option<String>,
    /// The admin key of the `--target` Sigil, to authorize sessions.
    #[arg(long, env = "SIGIL_BENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// The process id of the `--target` Sigil, to report its RSS.
    #[arg(long)]
    pub target_pid: Option<u32>,
    /// Where Sigil keeps sessions: the store of the Sigil sigil-bench
    /// starts, or the one the `--target` uses. It picks the ceiling: one
    /// Redis GET for Redis, the empty echo for memory.
    #[arg(long, value_enum, default_value_t = StoreKind::Redis)]
    pub store: StoreKind,
    /// A loopback Redis for Sigil and the baseline,
    /// `redis://127.0.0.1:<port>`. Without it, sigil-bench starts a
    /// `redis-server` on a free loopback port (unless `--store memory`).
    #[arg(long, env = "SIGIL_BENCH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Serve Sigil and the baseline inside this process instead of as child
    /// processes: no pinning, and the RSS reported is this process's.
    #[arg(long)]
    pub in_process: bool,
    /// HTTP/2 connections to each server.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight at any time, spread over the connections.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long each scenario is measured.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long each scenario runs unmeasured first.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Sessions created before the scenarios; calls draw tokens from them at
    /// random.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Live API tokens to make before the scenarios; the validation
    /// scenarios then send batches drawn from them (a random run of
    /// consecutive ones). Without it, each validation scenario creates its
    /// own batch.
    #[arg(long)]
    pub api_tokens: Option<usize>,
    /// Write the sessions and `--api-tokens` straight into Redis with
    /// Sigil's own domain rules and store code, many at once, instead of
    /// through CreateSession/AuthorizeSession/CreateApiToken: for a million
    /// of them in a minute rather than a quarter of an hour. Needs the Redis
    /// store and a Sigil that sigil-bench starts.
    #[arg(long)]
    pub direct_setup: bool,
    /// A call taking longer than this counts as an error (CLIENT_TIMEOUT).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Most calls one scenario may make, whatever the duration.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_requests: u64,
    /// Pin the servers sigil-bench starts (and nothing else) to this CPU.
    #[arg(long)]
    pub server_cpu: Option<usize>,
    /// After the scenarios, start a second Sigil pinned to these CPUs
    /// (a `taskset -c` list such as `0,1`; its runtime then has a worker
    /// per CPU) and measure the same scenarios against it: the report
    /// gives each as a ratio of the two rates. Needs the Redis store.
    #[arg(long)]
    pub scaling_cpus: Option<String>,
    /// With `--scaling-cpus`: run both sides of that comparison as Sigils
    /// of their own under a cgroup CPU quota of this share of each of their
    /// CPUs (0.4: 0.4 of a CPU for the one-CPU side, 0.8 spread over two
    /// for `0,1`, with a worker per CPU), leaving the rest of every core to
    /// the load and Redis. So a machine with no core to spare for the load
    /// can still tell whether Sigil's rate grows with its CPUs. Needs root
    /// (a cgroup write).
    #[arg(long)]
    pub core_share: Option<f64>,
    /// Pin sigil-bench's load to this CPU.
    #[arg(long)]
    pub client_cpu: Option<usize>,
    /// Pin the redis-server sigil-bench starts to this CPU; unpinned
    /// without it.
    #[arg(long)]
    pub redis_cpu: Option<usize>,
    /// How long each in-process ceiling (raw JWT verify per algorithm, API
    /// token parsing) and the raw MGET run.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub ceiling_time: Duration,
    /// Serve Sigil's validator with the session near-cache on
    /// (`--session-cache`): WhoAmI and CheckAccess answer from memory,
    /// kept exact by the event feed or by Redis key tracking
    /// (`--session-cache-invalidation`).
    #[arg(long)]
    pub session_cache: bool,
    /// Where the near-cache learns of changes, with `--session-cache`.
    #[arg(long, value_enum, default_value_t = sigil_validator::Invalidation::EventFeed)]
    pub session_cache_invalidation: sigil_validator::Invalidation,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Where sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// Redis, as in production.
    Redis,
    /// The in-memory store of `sigil dev`.
    Memory,
}

/// What `serve` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// Sigil's issuer and validator on one port.
    Sigil,
    /// The baseline: an empty echo and one Redis GET.
    Baseline,
}

/// How to serve.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// What to serve.
    #[arg(value_enum)]
    pub server: ServerKind,
    /// Where to listen; loopback only.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Sigil's own flags (`SIGIL_REDIS_URL`, `SIGIL_ADMIN_KEYS`...).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The validator's near-cache (`SIGIL_SESSION_CACHE`...).
    #[command(flatten)]
    pub session_cache: sigil_validator::SessionCacheArgs,
}

impl RunArgs {
    /// Checks the values together, so a bad run stops before it starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.scenarios.is_empty() {
            return Err("name at least one scenario".into());
        }
        if !(1..=1024).contains(&self.connections) {
            return Err("--connections must be 1 to 1024".into());
        }
        if !(self.connections..=100_000).contains(&self.concurrency) {
            return Err("--concurrency must be at least --connections and at most 100000".into());
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3600) {
            return Err("--duration must be positive and at most 1h".into());
        }
        if self.warmup > Duration::from_secs(600) {
            return Err("--warmup must be at most 10m".into());
        }
        if self.ceiling_time.is_zero() || self.ceiling_time > Duration::from_secs(60) {
            return Err("--ceiling-time must be positive and at most 60s".into());
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(60) {
            return Err("--request-timeout must be positive and at most 60s".into());
        }
        if !(1..=MAX_SESSIONS).contains(&self.sessions) {
            return Err(format!("--sessions must be 1 to {MAX_SESSIONS}"));
        }
        if self
            .api_tokens
            .is_some_and(|count| !(1..=MAX_SESSIONS).contains(&count))
        {
            return Err(format!("--api-tokens must be 1 to {MAX_SESSIONS}"));
        }
        if self.direct_setup && (self.store != StoreKind::Redis || self.target.is_some()) {
            return Err(
                "--direct-setup writes to the Redis of a Sigil sigil-bench starts: \
                 drop --target and --store memory"
                    .into(),
            );
        }
        if let Some(cpus) = &self.scaling_cpus {
            let well_formed = !cpus.is_empty()
                && cpus
                    .chars()
                    .all(|char| char.is_ascii_digit() || char == ',' || char == '-');
            if !well_formed || crate::pin::cpus_in(cpus).is_none() {
                return Err("--scaling-cpus takes a CPU list such as 0,1 or 0-1".into());
            }
            if self.store != StoreKind::Redis || self.target.is_some() || self.in_process {
                return Err(
                    "--scaling-cpus starts a second Sigil on the same Redis: drop --target, \
                     --in-process and --store memory"
                        .into(),
                );
            }
        }
        if let Some(share) = self.core_share {
            if !(share > 0.0 && share <= 1.0) {
                return Err("--core-share must be above 0 and at most 1".into());
            }
            if self.scaling_cpus.is_none() {
                return Err("--core-share applies to --scaling-cpus: give both".into());
            }
        }
        if self.max_requests == 0 {
            return Err("--max-requests must be positive".into());
        }
        if let Some(target) = &self.target {
            require_loopback(target, "http://", "--target")?;
            if self.admin_key.is_none() {
                return Err(
                    "--target needs the Sigil's admin key (--admin-key or SIGIL_BENCH_ADMIN_KEY) \
                     to authorize sessions"
                        .into(),
                );
            }
        } else if self.target_pid.is_some() {
            return Err("--target-pid goes with --target".into());
        }
        if let Some(url) = &self.redis_url {
            require_loopback(url, "redis://", "--redis-url")?;
        }
        if self.in_process && (self.server_cpu.is_some() || self.client_cpu.is_some()) {
            return Err("--in-process cannot pin: drop --server-cpu/--client-cpu".into());
        }
        if self.redis_cpu.is_some() && self.redis_url.is_some() {
            return Err("--redis-cpu pins only the redis-server sigil-bench starts".into());
        }
        Ok(())
    }
}
