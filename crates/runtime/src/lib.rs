//! What every Sigil binary shares: configuration, logging, admin
//! authentication, request limits, health, reflection and graceful shutdown.

mod admin;
mod admission;
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

pub use admin::{AdminKeys, bearer_token, reload_admin_keys, watch_admin_keys};
pub use admission::Admission;
pub use config::{AdminArgs, CommonArgs, JwtArgs, LogArgs, LogFormat, SessionArgs, StoreArgs};
pub use context::Context;
pub use limits::Limits;
pub use rate_limit::{CreateSessionRates, RateLimits};
pub use run::{run_service, run_service_with_http};
pub use server::{Services, serve, serve_http, shutdown_signal};
pub use telemetry::{OtlpSettings, Telemetry, init_telemetry, init_telemetry_with_writer};
pub use tls::{Tls, TlsArgs, connect_lazy, watch_tls};
pub use trace_context::{TraceContext, inject_trace_context};

/// Exit status for a configuration error (`EX_USAGE`).
pub const EXIT_BAD_CONFIG: u8 = 64;
