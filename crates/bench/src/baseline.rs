//! The baseline server: the irreducible work of a Sigil call, built on the
//! same stack (tonic server from `sigil_runtime::serve`, the same tokio
//! runtime, a Redis `ConnectionManager` configured as Sigil's store's), so
//! its rate is the ceiling Sigil's figures are divided by.

use std::time::Duration;

use redis::{
    AsyncCommands, Client,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use sigil_runtime::Services;
use tonic::{Request, Response, Status};

/// Code generated from `proto/sigil_bench/v1/baseline.proto`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("sigil_bench.v1");
}

use pb::baseline_service_server::{BaselineService, BaselineServiceServer};

/// The baseline's gRPC service name, for health.
pub const SERVICE_NAME: &str = pb::baseline_service_server::SERVICE_NAME;

/// The key GetKey reads in the benchmark.
pub const BENCH_KEY: &str = "sigil-bench:baseline";

/// Bytes stored under [`BENCH_KEY`]: about the size of a session record, so
/// the GET moves as much as WhoAmI's HGET.
pub const BENCH_VALUE_BYTES: usize = 400;

/// The `sigil_bench.v1.BaselineService` handlers.
#[derive(Clone)]
pub struct Baseline {
    redis: Option<ConnectionManager>,
    timeout: Duration,
}

/// Adds the baseline to `services`. Without a usable Redis URL, GetKey
/// answers FAILED_PRECONDITION and only Echo is measurable.
pub fn add_to(services: &mut Services, redis_url: Option<&str>, timeout: Duration) {
    let redis = redis_url.and_then(|url| {
        // The same connection settings as Sigil's RedisStore.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let client = Client::open(url).ok()?;
        ConnectionManager::new_lazy_with_config(client, config).ok()
    });
    services.add(
        SERVICE_NAME,
        BaselineServiceServer::new(Baseline { redis, timeout }),
    );
}

#[tonic::async_trait]
impl BaselineService for Baseline {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(pb::EchoResponse {
            payload: request.into_inner().payload,
        }))
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::GetKeyResponse>, Status> {
        let Some(redis) = &self.redis else {
            return Err(Status::failed_precondition(
                "the baseline was started without Redis",
            ));
        };
        let mut connection = redis.clone();
        let key = request.into_inner().key;
        match tokio::time::timeout(self.timeout, connection.get::<_, Option<Vec<u8>>>(key)).await {
            Ok(Ok(value)) => Ok(Response::new(pb::GetKeyResponse {
                found: value.is_some(),
                value: value.unwrap_or_default(),
            })),
            Ok(Err(_)) | Err(_) => Err(Status::unavailable("Redis did not answer")),
        }
    }
}
