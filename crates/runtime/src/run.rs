//! The body of every service's `main`: log, build the context, bind, serve
//! until SIGTERM or SIGINT.

use std::{net::SocketAddr, process::ExitCode};

use tokio::net::TcpListener;

use crate::{CommonArgs, Context, EXIT_BAD_CONFIG, Services, init_logging, serve, shutdown_signal};

/// Runs a service binary: `services` builds what the listener carries from
/// the context. Bad configuration exits 64 with one line on stderr.
pub fn run_service(
    binary: &str,
    listen: SocketAddr,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Result<Services, String>,
) -> ExitCode {
    if let Err(error) = init_logging(&args.log) {
        eprintln!("{binary}: {error}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{binary}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // The Redis store spawns its connection task: build it inside the
        // runtime.
        let context = match Context::from_args(args) {
            Ok(context) => context,
            Err(error) => {
                eprintln!("{binary}: {error}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        let listener = match TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{binary}: cannot listen on {listen}: {error}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        let services = match services(&context) {
            Ok(services) => services,
            Err(error) => {
                eprintln!("{binary}: {error}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, "{binary} listening for gRPC");
        match serve(
            listener,
            services,
            &context,
            args.store.health_interval,
            shutdown_signal(),
        )
        .await
        {
            Ok(()) => {
                tracing::info!("{binary} stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "{binary} failed");
                ExitCode::FAILURE
            }
        }
    })
}
