//! Admission: a bound on calls in flight (beyond it, RESOURCE_EXHAUSTED at
//! once, so a flood costs no memory), and a deadline on every call (the
//! caller's `grpc-timeout` or the server's maximum, whichever is sooner).
//! Health checks bypass the bound, so probes are answered under overload.

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, Request};
use sigil_domain::Error;
use sigil_proto::status::to_status;
use tokio::sync::Semaphore;
use tonic::body::Body;

use crate::{
    Limits,
    middleware::{CallFuture, Middleware, Next},
};

/// Applies [`Limits`]' concurrency bound and deadline.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    max_request_time: Duration,
}

impl Admission {
    /// Admission for `limits`, shared by every connection.
    pub fn new(limits: &Limits) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            max_request_time: limits.max_request_time,
        }
    }
}

impl Middleware for Admission {
    fn handle<E: Send + 'static>(&self, request: Request<Body>, next: Next<E>) -> CallFuture<E> {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return next(request);
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Box::pin(async { Ok(to_status(Error::Overloaded).into_http()) });
        };
        let deadline = grpc_timeout(request.headers()).map_or(self.max_request_time, |timeout| {
            timeout.min(self.max_request_time)
        });
        let call = next(request);
        Box::pin(async move {
            let answer = match tokio::time::timeout(deadline, call).await {
                Ok(answer) => answer,
                // Dropping the call cancels its store round trips too.
                Err(_) => Ok(to_status(Error::DeadlineExceeded).into_http()),
            };
            drop(permit);
            answer
        })
    }
}

/// The caller's deadline from `grpc-timeout` (an integer of at most eight
/// digits and a unit: H, M, S, m, u, n).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (amount, unit) = value.split_at(value.len() - 1);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_by_unit() {
        let parse = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().expect("ascii"));
            grpc_timeout(&headers)
        };
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("100u"), Some(Duration::from_micros(100)));
        assert_eq!(parse("5x"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("123456789S"), None);
    }
}
