//! The body of every service's `main`: log, build the context, bind, serve
//! until SIGTERM or SIGINT.

use std::{net::SocketAddr, process::ExitCode};

use tokio::net::TcpListener;

use crate::{
    CommonArgs, Context, EXIT_BAD_CONFIG, OtlpSettings, Services, init_telemetry, serve,
    shutdown_signal,
};

/// Runs a service binary: `services` builds what the listener carries from
/// the context. Bad configuration exits 64 with one line on stderr.
pub fn run_service(
    binary: &str,
    listen: SocketAddr,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Result<Services, String>,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{binary}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The OTLP exporter is a tonic client: build it inside the runtime.
    let telemetry = {
        let _entered = runtime.enter();
        init_telemetry(&args.log, OtlpSettings::from_env(binary))
    };
    let _telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
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
        let metrics_server = match args.metrics_listen {
            Some(metrics_address) => match TcpListener::bind(metrics_address).await {
                Ok(metrics_listener) => {
                    tracing::info!(address = %metrics_address, "{binary} serving /metrics");
                    Some(tokio::spawn(serve_metrics(metrics_listener)))
                }
                Err(error) => {
                    eprintln!("{binary}: cannot listen on {metrics_address}: {error}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            },
            None => None,
        };
        let served = serve(
            listener,
            services,
            &context,
            args.store.health_interval,
            shutdown_signal(),
        )
        .await;
        if let Some(metrics_server) = metrics_server {
            metrics_server.abort();
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

/// Serves only `/metrics`, over HTTP/1.1 or HTTP/2.
async fn serve_metrics(listener: TcpListener) {
    let routes = tonic::service::Routes::from(crate::metrics::metrics_router());
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .serve_with_incoming(
            routes,
            tokio_stream::wrappers::TcpListenerStream::new(listener),
        )
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "the metrics listener failed");
    }
}
