//! Serving: one listener carrying Sigil's services (and their HTTP routes
//! and `/metrics`, over HTTP/1.1), gRPC health per service
//! (NOT_SERVING while the store does not answer), reflection v1 and v1alpha
//! so grpcurl needs no proto files, TLS when the context has it, and a
//! drain on shutdown.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    runtime::Handle,
    sync::{mpsc, watch},
};
use tokio_stream::{
    StreamExt,
    wrappers::{ReceiverStream, UnboundedReceiverStream},
};
use tonic::{
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Context,
    middleware::Around,
    tls::{Protocols, Tls, TlsListener},
    workers::{Dealer, Dealt, Open},
};

/// The gRPC services one listener carries, and their names for health,
/// and any HTTP/JSON routes served beside them.
#[derive(Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    http: Option<axum::Router>,
    /// Turns true when the server starts draining.
    draining: watch::Sender<bool>,
    /// A plaintext listener answering gRPC health alone, for probes that
    /// cannot speak TLS (the kubelet's).
    health_listener: Option<TcpListener>,
}

impl Services {
    /// Adds a service, reported under `name` (`sigil.v1.IssuerService`...).
    pub fn add<S>(&mut self, name: &'static str, service: S) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.names.push(name);
        self
    }

    /// Adds HTTP/JSON routes (such as `/edge/validate`). `serve` answers
    /// them on the gRPC port too, over HTTP/1.1, beside gRPC over HTTP/2.
    pub fn add_http(&mut self, router: axum::Router) -> &mut Self {
        self.http = Some(match self.http.take() {
            Some(routes) => routes.merge(router),
            None => router,
        });
        self
    }

    /// Turns true when the server starts to drain: long-lived streams watch
    /// it to end, since a drain waits for every call in flight.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Also answers gRPC health (and nothing else) on `listener`, in
    /// plaintext even when the main listener serves TLS: the kubelet's gRPC
    /// probes speak no TLS. It carries no data beyond SERVING or
    /// NOT_SERVING.
    pub fn serve_health_on(&mut self, listener: TcpListener) -> &mut Self {
        self.health_listener = Some(listener);
        self
    }

    /// The HTTP/JSON routes, if any were added: for a listener of their own.
    pub fn http_routes(&self) -> Option<axum::Router> {
        self.http.clone()
    }
}

/// Serves `services` on `listener` (over TLS when `context.tls` has a
/// certificate) until `shutdown` completes, then lets in-flight calls
/// finish.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    context: &Context,
    health_interval: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    serve_on(listener, services, context, health_interval, shutdown, &[]).await
}

/// [`serve`], with the connections dealt between this runtime and
/// `workers` ([`Workers::handles`](crate::Workers::handles)); all on
/// this one when there are none.
pub async fn serve_on(
    listener: TcpListener,
    mut services: Services,
    context: &Context,
    health_interval: Duration,
    shutdown: impl Future<Output = ()>,
    workers: &[Handle],
) -> Result<(), tonic::transport::Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in &services.names {
        reporter
            .set_service_status(*name, ServingStatus::NotServing)
            .await;
    }
    let watcher = tokio::spawn(watch_store(
        context.clone(),
        reporter,
        services.names.clone(),
        health_interval,
    ));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sigil_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the descriptor sets are compiled in and valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sigil_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the descriptor sets are compiled in and valid");
    let health_only = services.health_listener.take().map(|listener| {
        let health_service = health_service.clone();
        tokio::spawn(async move {
            let served = Server::builder()
                .add_service(health_service)
                .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the health listener failed");
            }
        })
    });
    services
        .routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    // HTTP routes (`/metrics` always, the services' own when they have
    // them) share the port: HTTP/1.1 requests reach them, gRPC keeps HTTP/2.
    crate::metrics::prometheus();
    let mut http = crate::metrics::metrics_router();
    if let Some(routes) = services.http {
        http = http.merge(routes);
    }
    let routes = Routes::from(
        services
            .routes
            .routes()
            .into_axum_router()
            .merge(http)
            .fallback(nothing_here),
    );
    let draining = services.draining;
    let shutdown = async move {
        shutdown.await;
        draining.send_replace(true);
    };
    let server = Server::builder()
        .accept_http1(true)
        // Outermost, so it counts the codes callers actually get.
        .layer(Around::new(crate::metrics::CallMetrics))
        .layer(Around::new(crate::TraceContext))
        .layer(Around::new(crate::Admission::new(&context.limits)))
        .layer(context.limits.layer());
    let tls = context.tls.clone().filter(Tls::serves);
    let served = match tls {
        _ if !workers.is_empty() => {
            // One worker's share of the connections, served on its runtime.
            let serve_connections = |connections, mut stopping: watch::Receiver<bool>| {
                let (server, routes, tls) = (server.clone(), routes.clone(), tls.clone());
                async move {
                    // Registered here, so each connection's I/O wakes this
                    // worker's thread.
                    let streams = UnboundedReceiverStream::new(connections).filter_map(
                        |(stream, open): (std::net::TcpStream, Open)| {
                            let stream = tokio::net::TcpStream::from_std(stream).ok()?;
                            let peer = stream.peer_addr().ok()?;
                            Some((Dealt::new(stream, open), peer))
                        },
                    );
                    let stopped = async move {
                        let _ = stopping.wait_for(|stop| *stop).await;
                    };
                    match tls {
                        Some(tls) => {
                            let handshaken =
                                crate::tls::handshake_each(streams, tls, Protocols::Grpc);
                            server
                                .serve_with_incoming_shutdown(
                                    routes,
                                    ReceiverStream::new(handshaken),
                                    stopped,
                                )
                                .await
                        }
                        None => {
                            let incoming =
                                streams.map(|(stream, _)| Ok::<_, std::io::Error>(stream));
                            server
                                .serve_with_incoming_shutdown(routes, incoming, stopped)
                                .await
                        }
                    }
                }
            };
            serve_across(listener, workers, shutdown, serve_connections).await
        }
        Some(tls) => {
            let incoming = tokio_stream::wrappers::ReceiverStream::new(crate::tls::accept(
                listener,
                tls,
                Protocols::Grpc,
            ));
            server
                .serve_with_incoming_shutdown(routes, incoming, shutdown)
                .await
        }
        None => {
            // tonic sets TCP_NODELAY only on listeners it binds itself.
            // Without it, a response whose body h2 writes apart from its
            // trailers (bodies over 256 bytes) waits for the client's
            // delayed ACK: ~40 ms per call.
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            server
                .serve_with_incoming_shutdown(routes, incoming, shutdown)
                .await
        }
    };
    watcher.abort();
    if let Some(health_only) = health_only {
        health_only.abort();
    }
    served
}

/// What the port answers where nothing is served: a gRPC call gets
/// UNIMPLEMENTED, as gRPC asks; any other request an HTTP 404 (rather than
/// a gRPC answer to a plain HTTP client).
async fn nothing_here(headers: http::HeaderMap) -> axum::response::Response {
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    match grpc {
        true => tonic::Status::unimplemented("no such method").into_http(),
        false => axum::response::IntoResponse::into_response((
            http::StatusCode::NOT_FOUND,
            "not found\n",
        )),
    }
}

/// Accepts on `listener` and deals the connections between this runtime
/// and `workers` (each to the one with the fewest open), each serving its
/// share with `serve_connections` until told to stop; on `shutdown`, stops
/// accepting and waits until every worker has drained.
async fn serve_across<Serving>(
    listener: TcpListener,
    workers: &[Handle],
    shutdown: impl Future<Output = ()>,
    serve_connections: impl Fn(
        mpsc::UnboundedReceiver<(std::net::TcpStream, Open)>,
        watch::Receiver<bool>,
    ) -> Serving,
) -> Result<(), tonic::transport::Error>
where
    Serving: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let (stop, stopping) = watch::channel(false);
    let mut queues = Vec::with_capacity(workers.len() + 1);
    let mut served = Vec::with_capacity(workers.len() + 1);
    for worker in 0..=workers.len() {
        let (queue, connections) = mpsc::unbounded_channel();
        queues.push(queue);
        let serving = serve_connections(connections, stopping.clone());
        served.push(match worker {
            0 => tokio::spawn(serving),
            worker => workers[worker - 1].spawn(serving),
        });
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut dealer = Dealer::new(queues.len());
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = next_connection(&listener) => accepted,
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "dropped a connection at accept");
                continue;
            }
        };
        // A worker whose server has ended (it never should) takes no more.
        let Some((worker, open)) = dealer.deal(|worker| !queues[worker].is_closed()) else {
            tracing::error!("no worker serves connections: dropped one");
            continue;
        };
        metrics::counter!("sigil_connections_accepted_total", "worker" => worker.to_string())
            .increment(1);
        let _ = queues[worker].send((stream, open));
    }
    // Stop accepting at once, as tonic does, then drain every worker.
    drop(listener);
    stop.send_replace(true);
    drop(queues);
    let mut result = Ok(());
    for worker in served {
        match worker.await {
            Ok(Err(error)) if result.is_ok() => result = Err(error),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "a worker's server failed"),
        }
    }
    result
}

/// The next connection `listener` accepts, with `TCP_NODELAY` set:
/// without it, a response h2 writes apart from its trailers waits for the
/// client's delayed ACK (~40 ms per call). Failures to accept (out of file
/// descriptors, mostly) are logged and retried after a moment rather than
/// in a spin.
pub(crate) async fn next_connection(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves HTTP/JSON `routes` alone on `listener` (over TLS when `tls` has
/// a certificate) until `shutdown` completes, then lets in-flight requests
/// finish.
pub async fn serve_http(
    listener: TcpListener,
    routes: axum::Router,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls.filter(Tls::serves) {
        Some(tls) => {
            axum::serve(TlsListener::new(listener, tls)?, routes)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, routes)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Keeps each named service's health in step with whether the store
/// answers. The server's own status (`""`) stays SERVING while the process
/// runs: it is what liveness probes ask, and a Redis outage must make pods
/// unready, not restart them all.
async fn watch_store(
    context: Context,
    reporter: HealthReporter,
    names: Vec<&'static str>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        ticker.tick().await;
        let status = match context.store.ping().await {
            Ok(()) => ServingStatus::Serving,
            Err(_) => ServingStatus::NotServing,
        };
        if last != Some(status) {
            match status {
                ServingStatus::Serving => tracing::info!("store answers: serving"),
                _ => tracing::warn!("store does not answer: not serving"),
            }
            for name in &names {
                reporter.set_service_status(*name, status).await;
            }
            last = Some(status);
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT: draining"),
        () = terminate => tracing::info!("SIGTERM: draining"),
    }
}
