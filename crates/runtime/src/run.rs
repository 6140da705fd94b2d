//! The body of every service's `main`: telemetry, the context, bind, serve
//! until SIGTERM or SIGINT.

use std::{net::SocketAddr, num::NonZeroUsize, process::ExitCode, time::Duration};

use tokio::{net::TcpListener, runtime::Handle, task::JoinHandle};

use crate::{
    CommonArgs, Context, EXIT_BAD_CONFIG, OtlpSettings, Scheduler, Services, init_telemetry,
    serve_http,
    server::serve_on,
    shutdown_signal,
    workers::{Workers, current_thread_runtime},
};

/// Runs a service binary: `services` builds what the listener carries from
/// the context. Bad configuration exits 64 with one line on stderr.
pub fn run_service(
    binary: &str,
    listen: SocketAddr,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Result<Services, String>,
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
    services: impl FnOnce(&Context) -> Result<Services, String>,
) -> ExitCode {
    let Runtimes {
        runtime,
        workers,
        scheduler,
        count,
    } = match Runtimes::build(args) {
        Ok(built) => built,
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
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    tracing::info!(%scheduler, workers = count, "async runtime");
    let worker_handles = workers.as_ref().map_or(&[][..], Workers::handles);
    let code = runtime.block_on(async {
        let code = match run(binary, listen, http_listen, args, services, worker_handles).await {
            Ok(code) | Err(code) => code,
        };
        // The last spans go out through the runtime's own tasks: flush them
        // while it still runs (a current-thread runtime stops when
        // `block_on` returns), from a thread that may block.
        let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
        code
    });
    // Every worker has drained by now: stop their threads.
    drop(workers);
    code
}

/// The main thread's runtime and, under the per-core scheduler with more
/// than one worker, the other workers (`workers.rs`).
///
/// A single worker runs Tokio's current-thread runtime. The multi-thread
/// one, given one worker, runs a woken task next (its LIFO slot): the
/// connection task then wakes after every single response and writes it
/// alone, one `writev` (and, on loopback, the peer's receive) per call. The
/// current-thread scheduler queues it behind the calls already running, so
/// their answers go out together. Measured with sigil-bench on one pinned
/// CPU: the empty echo went from ~50k to ~105k calls/s, and a VerifyToken's
/// server CPU from 58 to 47 µs. The per-core scheduler keeps that on every
/// worker.
struct Runtimes {
    runtime: tokio::runtime::Runtime,
    workers: Option<Workers>,
    /// What the startup log calls it.
    scheduler: &'static str,
    count: usize,
}

impl Runtimes {
    /// `--worker-threads` workers, or one per CPU the process may use
    /// (affinity, cgroup quota), under `--scheduler`.
    fn build(args: &CommonArgs) -> std::io::Result<Runtimes> {
        let count = args
            .workers
            .worker_threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let (runtime, workers, scheduler) = match (count, args.workers.scheduler) {
            (1, _) => (current_thread_runtime()?, None, "current-thread"),
            (_, Scheduler::PerCore) => (
                current_thread_runtime()?,
                Some(Workers::start(count - 1)?),
                "per-core",
            ),
            (_, Scheduler::WorkStealing) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(count)
                    .enable_all()
                    .build()?;
                (runtime, None, "work-stealing")
            }
        };
        Ok(Runtimes {
            runtime,
            workers,
            scheduler,
            count,
        })
    }
}

async fn run(
    binary: &str,
    listen: SocketAddr,
    http_listen: Option<SocketAddr>,
    args: &CommonArgs,
    services: impl FnOnce(&Context) -> Result<Services, String>,
    workers: &[Handle],
) -> Result<ExitCode, ExitCode> {
    let bad_config = |error: String| {
        eprintln!("{binary}: {error}");
        ExitCode::from(EXIT_BAD_CONFIG)
    };
    // The Redis store spawns its connection task: build it inside the
    // runtime.
    let context = Context::connect(args).await.map_err(bad_config)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| bad_config(format!("cannot listen on {listen}: {error}")))?;
    let mut services = services(&context).map_err(bad_config)?;
    let key_watcher = tokio::spawn(crate::watch_admin_keys(
        args.admin.clone(),
        context.admin.clone(),
        Duration::from_secs(2),
    ));
    let tls_watcher = context
        .tls
        .clone()
        .map(|tls| tokio::spawn(crate::watch_tls(tls.clone(), tls.reload_interval())));
    let scheme = match context.tls.as_ref().is_some_and(crate::Tls::serves) {
        true => "TLS",
        false => "plaintext",
    };
    let mut side_listeners = Vec::new();
    if let (Some(address), Some(routes)) = (http_listen, services.http_routes()) {
        side_listeners.push(
            spawn_http(binary, address, routes, &context, "HTTP")
                .await
                .map_err(bad_config)?,
        );
    }
    if let Some(address) = args.metrics_listen {
        let routes = crate::metrics::metrics_router();
        side_listeners.push(
            spawn_http(binary, address, routes, &context, "/metrics")
                .await
                .map_err(bad_config)?,
        );
    }
    if let Some(address) = args.health_listen {
        let health = TcpListener::bind(address)
            .await
            .map_err(|error| bad_config(format!("cannot listen on {address}: {error}")))?;
        let address = health.local_addr().unwrap_or(address);
        tracing::info!(%address, "{binary} answering gRPC health (plaintext)");
        services.serve_health_on(health);
    }
    let address = listener.local_addr().unwrap_or(listen);
    tracing::info!(%address, "{binary} listening for gRPC ({scheme})");
    let served = serve_on(
        listener,
        services,
        &context,
        args.store.health_interval,
        shutdown_signal(),
        workers,
    )
    .await;
    key_watcher.abort();
    if let Some(tls_watcher) = tls_watcher {
        tls_watcher.abort();
    }
    // Every listener heard the same signal: wait for them to drain too,
    // unless gRPC failed on its own and no signal is coming.
    for side in side_listeners {
        if served.is_err() {
            side.abort();
        }
        match side.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "{binary} HTTP listener failed"),
            Err(error) if !error.is_cancelled() => {
                tracing::error!(%error, "{binary} HTTP listener task failed")
            }
            Err(_) => {}
        }
    }
    match served {
        Ok(()) => {
            tracing::info!("{binary} stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            tracing::error!(%error, "{binary} failed");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Binds `address` and serves `routes` there until SIGTERM or SIGINT.
async fn spawn_http(
    binary: &str,
    address: SocketAddr,
    routes: axum::Router,
    context: &Context,
    what: &str,
) -> Result<JoinHandle<std::io::Result<()>>, String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let address = listener.local_addr().unwrap_or(address);
    tracing::info!(%address, "{binary} serving {what}");
    Ok(tokio::spawn(serve_http(
        listener,
        routes,
        context.tls.clone(),
        shutdown_signal(),
    )))
}
