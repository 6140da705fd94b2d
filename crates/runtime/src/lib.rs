//! What every Sigil binary shares: configuration, logging, admin
//! authentication, request limits, health, reflection and graceful shutdown.

mod admin;
mod config;
mod context;
mod limits;
mod run;
mod server;
mod telemetry;

pub use admin::{AdminKeys, bearer_token};
pub use config::{AdminArgs, CommonArgs, LogArgs, LogFormat, SessionArgs, StoreArgs};
pub use context::Context;
pub use limits::Limits;
pub use run::{run_service, run_service_with_http};
pub use server::{Services, serve, serve_http, shutdown_signal};
pub use telemetry::init_logging;

/// Exit status for a configuration error (`EX_USAGE`).
pub const EXIT_BAD_CONFIG: u8 = 64;
