//! What every Sigil binary shares: configuration, logging, admin
//! authentication, request limits, health, reflection and graceful shutdown.

mod admin;
mod admission;
mod batch_room;
mod config;
mod context;
mod limits;
pub mod metrics;
pub mod middleware;
mod rate_limit;
mod reload;
mod run;
mod server;
mod telemetry;
mod tls;
mod tokens;
mod trace_context;
mod workers;

pub use admin::{AdminKeys, bearer_token, reload_admin_keys, watch_admin_keys};
pub use admission::Admission;
pub use batch_room::{BatchRoom, DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT};
pub use config::{
    AdminArgs, CommonArgs, JwtArgs, LogArgs, LogFormat, Scheduler, SessionArgs, StoreArgs,
    WorkerArgs,
};
pub use context::Context;
pub use limits::Limits;
pub use rate_limit::{CreateSessionRates, RateLimits};
pub use run::{run_service, run_service_with_http};
pub use server::{Services, serve, serve_http, serve_on, shutdown_signal};
pub use telemetry::{OtlpSettings, Telemetry, init_telemetry, init_telemetry_with_writer};
pub use tls::{Tls, TlsArgs, connect_lazy, watch_tls};
pub use tokens::ActiveSigningKeys;
pub use trace_context::{TraceContext, inject_trace_context};
pub use workers::Workers;

/// Every binary built on this runtime (Sigil's services, `sigil-bench`,
/// the tests) allocates through mimalloc: glibc's malloc and free were a
/// fifth of the server's CPU for a 1,000-token ValidateTokens, and a
/// batch's answer is thousands of small strings (docs/benchmarks.md,
/// "What each fix bought").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for a configuration error (`EX_USAGE`).
pub const EXIT_BAD_CONFIG: u8 = 64;
