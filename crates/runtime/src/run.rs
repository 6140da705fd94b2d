//! The body of every service's `main`: log, build the context, bind, serve
//! until SIGTERM or SIGINT.

use std::{net::SocketAddr, process::ExitCode};

use tokio::net::TcpListener;

use crate::{
    CommonArgs, Context, EXIT_BAD_CONFIG, Services, init_logging, serve, serve_http,
    shutdown_signal,
};

/// Runs a service binary: `services` builds what the listener carries from
/// the context. Bad configuration exits 64 with one line on stderr.
pub fn run_service(
    binary: &str,
    listen: SocketAddr,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Services,
) -> ExitCode {
    run_service_with_http(binary, listen, None, args, services)
}

/// Runs a service binary as [`run_service`] does and, when `http_listen`
/// is given, also serves the services' HTTP/JSON routes alone on that
/// address.
pub fn run_service_with_http(
    binary: &str,
    listen: SocketAddr,
    http_listen: Option<SocketAddr>,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Services,
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
        let services = services(&context);
        let http = match (http_listen, services.http_routes()) {
            (Some(http_listen), Some(routes)) => match TcpListener::bind(http_listen).await {
                Ok(http_listener) => {
                    let address = http_listener.local_addr().unwrap_or(http_listen);
                    tracing::info!(%address, "{binary} listening for HTTP");
                    Some(tokio::spawn(serve_http(
                        http_listener,
                        routes,
                        shutdown_signal(),
                    )))
                }
                Err(error) => {
                    eprintln!("{binary}: cannot listen on {http_listen}: {error}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            },
            _ => None,
        };
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, "{binary} listening for gRPC");
        let served = serve(
            listener,
            services,
            &context,
            args.store.health_interval,
            shutdown_signal(),
        )
        .await;
        // Both listeners heard the same signal: wait for HTTP to drain too,
        // unless gRPC failed on its own and no signal is coming.
        if let Some(http) = http {
            if served.is_err() {
                http.abort();
            }
            match http.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "{binary} HTTP failed"),
                Err(error) if !error.is_cancelled() => {
                    tracing::error!(%error, "{binary} HTTP task failed")
                }
                Err(_) => {}
            }
        }
        match served {
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
