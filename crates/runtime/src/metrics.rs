//! Prometheus metrics: one process-wide recorder, a middleware counting
//! every gRPC call by service, method and code with its latency, and the
//! `/metrics` route that renders them.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, PoisonError, RwLock},
    time::{Duration, Instant},
};

use http::{Request, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tonic::{Code, body::Body};

use crate::middleware::{CallFuture, Middleware, Next};

/// Latency buckets in seconds: 50 µs to 2.5 s, dense where a Redis round
/// trip lands.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use. `None` if
/// another recorder was installed first (then metrics go there).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            // The recorder keeps every histogram sample until something
            // folds them into buckets: a scrape of /metrics, or upkeep.
            // Without a scraper that was about 20 bytes per call, forever
            // (sigil-bench saw the RSS climb from 16 to 106 MiB over one
            // run). A thread rather than a task: the recorder may be made
            // before, or outside, any runtime.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("sigil-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "no metrics upkeep thread: histograms grow until scraped");
            }
            Some(handle)
        })
        .as_ref()
}

/// `GET /metrics` in the Prometheus text format.
pub fn metrics_router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            let body = prometheus()
                .map(PrometheusHandle::render)
                .unwrap_or_default();
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                body,
            )
        }),
    )
}

/// Counts and times every call that passes through.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMetrics;

impl Middleware for CallMetrics {
    fn handle<E: Send + 'static>(&self, request: Request<Body>, next: Next<E>) -> CallFuture<E> {
        let started = Instant::now();
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        // A clone of the URI shares its bytes: no copy of the path per call.
        let uri = request.uri().clone();
        let call = next(request);
        Box::pin(async move {
            let response = call.await?;
            if is_grpc {
                record_grpc(uri.path(), &response, started);
            } else {
                metrics::counter!(
                    "sigil_http_requests_total",
                    "status" => response.status().as_str().to_owned()
                )
                .increment(1);
            }
            Ok(response)
        })
    }
}

fn record_grpc(path: &str, response: &Response<Body>, started: Instant) {
    // A unary error is answered trailers-only, with its status in the
    // headers; a success carries OK in trailers. Sigil's RPCs are unary, so
    // the headers tell the code.
    let code = response
        .headers()
        .get("grpc-status")
        .map_or(Code::Ok, |value| Code::from_bytes(value.as_bytes()));
    // Unknown methods would let any caller mint label values: fold them.
    let path = if code == Code::Unimplemented {
        "/unknown/unknown"
    } else {
        path
    };
    let method = MethodMetrics::of(path);
    method.duration.record(started.elapsed().as_secs_f64());
    method.calls(code).increment(1);
}

/// One method's series, looked up once: building label strings and
/// hashing them in the registry on every call cost more than the rest of
/// the metrics work together (seen in `perf` under sigil-bench).
struct MethodMetrics {
    service: String,
    method: String,
    duration: Histogram,
    /// `sigil_grpc_requests_total` by code, made on first use.
    by_code: [OnceLock<Counter>; CODES],
}

/// gRPC status codes run from 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

/// Most paths given series of their own. A path that reached no method is
/// folded into `unknown` by its code (UNIMPLEMENTED), but one refused
/// before routing (OVERLOADED) keeps the path it was sent with; past this
/// many, every new path is folded too, so junk paths cannot grow the map
/// (or the exporter) without bound. Sigil serves about forty methods.
const MAX_PATHS: usize = 256;

impl MethodMetrics {
    /// The series of `path` (`/package.Service/Method`), made on first use;
    /// at most [`MAX_PATHS`] of them.
    fn of(path: &str) -> Arc<MethodMetrics> {
        static METHODS: OnceLock<RwLock<HashMap<String, Arc<MethodMetrics>>>> = OnceLock::new();
        let methods = METHODS.get_or_init(RwLock::default);
        if let Some(found) = methods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return Arc::clone(found);
        }
        let full = methods.read().unwrap_or_else(PoisonError::into_inner).len() >= MAX_PATHS;
        let path = if full { "/unknown/unknown" } else { path };
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let made = Arc::new(MethodMetrics {
            service: service.to_owned(),
            method: method.to_owned(),
            duration: metrics::histogram!(
                "sigil_grpc_request_duration_seconds",
                "service" => service.to_owned(),
                "method" => method.to_owned()
            ),
            by_code: Default::default(),
        });
        Arc::clone(
            methods
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(path.to_owned())
                .or_insert(made),
        )
    }

    fn calls(&self, code: Code) -> &Counter {
        let index = (code as usize).min(CODES - 1);
        self.by_code[index].get_or_init(|| {
            metrics::counter!(
                "sigil_grpc_requests_total",
                "service" => self.service.clone(),
                "method" => self.method.clone(),
                "code" => format!("{code:?}")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_paths_cannot_grow_the_series_without_bound() {
        let known = MethodMetrics::of("/sigil.v1.ValidatorService/WhoAmI");
        assert_eq!(
            (known.service.as_str(), known.method.as_str()),
            ("sigil.v1.ValidatorService", "WhoAmI")
        );
        for index in 0..2 * MAX_PATHS {
            MethodMetrics::of(&format!("/junk.Service/Method{index}"));
        }
        let folded = MethodMetrics::of("/junk.Service/OneMore");
        assert_eq!(
            (folded.service.as_str(), folded.method.as_str()),
            ("unknown", "unknown")
        );
        // Paths seen before the map filled keep their series.
        assert!(Arc::ptr_eq(
            &known,
            &MethodMetrics::of("/sigil.v1.ValidatorService/WhoAmI")
        ));
    }
}
