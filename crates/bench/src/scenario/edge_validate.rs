//! `POST /edge/validate` over HTTP/1.1 on Sigil's gRPC port, with Unleash
//! Edge's JSON, a batch of valid API tokens per call. HTTP/1.1 carries one
//! call per connection at a time, so the client keeps up to `--concurrency`
//! connections (pooled, reused) rather than `--connections`.

use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

use crate::{BenchError, api_tokens::ApiTokenBatch, scenario::CallFailure};

/// The route Unleash SDKs and Edge call.
const VALIDATE_PATH: &str = "/edge/validate";

/// `POST /edge/validate` of one fixed batch.
pub struct EdgeValidate {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    body: Bytes,
    expected: usize,
}

impl EdgeValidate {
    /// Posts all of `batch` to `endpoint` (`http://127.0.0.1:<port>`),
    /// keeping up to `connections` idle HTTP/1.1 connections.
    pub fn new(
        endpoint: &str,
        batch: &ApiTokenBatch,
        connections: usize,
    ) -> Result<EdgeValidate, BenchError> {
        let uri: Uri = format!("{endpoint}{VALIDATE_PATH}")
            .parse()
            .map_err(|error| BenchError(format!("bad endpoint {endpoint}: {error}")))?;
        let body = serde_json::to_vec(&serde_json::json!({ "tokens": batch.tokens() }))
            .map_err(|error| BenchError(format!("cannot encode the batch: {error}")))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build(connector);
        Ok(EdgeValidate {
            client,
            uri,
            body: Bytes::from(body),
            expected: batch.len(),
        })
    }

    /// One POST; a status other than 200, or fewer tokens back than sent,
    /// is an error.
    pub async fn call(&self) -> Result<(), CallFailure> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.body.clone()))
            .map_err(|_| CallFailure::UnexpectedAnswer)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|_| CallFailure::HttpTransport)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| CallFailure::HttpTransport)?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(CallFailure::HttpStatus(status.as_u16()));
        }
        let answered = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| json.get("tokens")?.as_array().map(Vec::len));
        if answered == Some(self.expected) {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
