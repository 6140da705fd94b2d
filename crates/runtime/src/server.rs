//! Serving: one listener carrying Sigil's services (and their HTTP routes
//! and `/metrics`, over HTTP/1.1), gRPC health per service
//! (NOT_SERVING while the store does not answer), reflection v1 and v1alpha
//! so grpcurl needs no proto files, TLS when the context has it, and a
//! drain on shutdown.

use std::{future::Future, time::Duration};

use tokio::{net::TcpListener, sync::watch};
use tonic::{
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Context,
    middleware::Around,
    tls::{Protocols, Tls, TlsListener},
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
    mut services: Services,
    context: &Context,
    health_interval: Duration,
    shutdown: impl Future<Output = ()>,
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
    let routes = Routes::from(services.routes.routes().into_axum_router().merge(http));
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
    let served = match context.tls.clone().filter(Tls::serves) {
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
