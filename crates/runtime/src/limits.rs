//! Request size limits. tonic refuses an oversized message with
//! OUT_OF_RANGE; Sigil promises RESOURCE_EXHAUSTED with an ErrorInfo, so
//! this layer rewrites that one answer.

use http::Response;
use sigil_domain::Error;
use sigil_proto::status::to_status;
use tonic::{Code, Status, body::Body};
use tower::util::MapResponseLayer;

/// Limits on what a request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// Calls handled at once by this process; more are refused at once
    /// with RESOURCE_EXHAUSTED rather than queued.
    pub max_concurrent_requests: usize,
    /// The longest any call may take; a caller's shorter `grpc-timeout`
    /// wins. Past it the answer is DEADLINE_EXCEEDED.
    pub max_request_time: std::time::Duration,
    /// Most entries in one batch call (BatchWhoAmI, BatchVerifyTokens).
    pub max_batch_size: usize,
    /// Most batch entries (of BatchWhoAmI, BatchVerifyTokens,
    /// ValidateTokens and `/edge/validate` together) answered at once by
    /// this process; more wait their turn ([`BatchRoom`](crate::BatchRoom)).
    pub max_batch_entries_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 100 * 1024,
            max_concurrent_requests: 4096,
            max_request_time: std::time::Duration::from_secs(10),
            max_batch_size: 1000,
            max_batch_entries_in_flight: crate::batch_room::DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT,
        }
    }
}

/// tonic's words for a message over `max_decoding_message_size`.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

impl Limits {
    /// RESOURCE_EXHAUSTED when a batch of `size` entries is over the
    /// maximum.
    pub fn check_batch(&self, size: usize) -> sigil_domain::Result<()> {
        if size > self.max_batch_size {
            return Err(Error::BatchTooLarge {
                limit: self.max_batch_size,
            });
        }
        Ok(())
    }

    /// A layer that turns tonic's OUT_OF_RANGE for an oversized request into
    /// Sigil's RESOURCE_EXHAUSTED.
    pub fn layer(self) -> MapResponseLayer<impl Fn(Response<Body>) -> Response<Body> + Clone> {
        let limit_bytes = self.max_request_bytes;
        MapResponseLayer::new(move |response: Response<Body>| {
            let too_large = Status::from_header_map(response.headers()).is_some_and(|status| {
                status.code() == Code::OutOfRange && status.message().starts_with(TONIC_TOO_LARGE)
            });
            if too_large {
                to_status(Error::RequestTooLarge { limit_bytes }).into_http()
            } else {
                response
            }
        })
    }
}
