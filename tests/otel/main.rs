//! One trace across two services: a VerifyToken that makes the validator
//! fetch keys from the issuer arrives at a real OTLP receiver as one trace,
//! the issuer's span a child of the validator's, joined by `traceparent`
//! over a real gRPC hop.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;
mod receiver;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use sigil_proto::v1 as pb;
use sigil_runtime::{LogArgs, LogFormat, OtlpSettings, init_telemetry};
use tokio_stream::wrappers::TcpListenerStream;

use harness::{Harness, Role, Server, admin, channel_to, eventually, listener};
use receiver::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_token_is_one_trace_across_validator_and_issuer() {
    let receiver = Receiver::default();
    let collector = listener().await;
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(collector)),
    );
    let log = LogArgs {
        log_format: LogFormat::Human,
        log_filter: "info".into(),
    };
    let telemetry = init_telemetry(
        &log,
        Some(OtlpSettings {
            endpoint,
            service_name: "sigil-test".into(),
        }),
    )
    .unwrap();

    // The issuer side (here all services) and a validator of its own that
    // knows no keys yet, so verifying makes it call the issuer.
    let h = Harness::memory().await;
    let validator = Server::spawn(
        &h.context,
        Role::Validator { issuer: h.address },
        listener().await,
    );
    let mut issuer = h.issuer().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["p".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    issuer
        .put_token_template(admin(pb::PutTokenTemplateRequest {
            template: Some(pb::TokenTemplate {
                name: "traced".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap();
    let jwt = issuer
        .get_token(pb::GetTokenRequest {
            session_token: created.session_key,
            template: "traced".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jwt;
    pb::validator_service_client::ValidatorServiceClient::new(channel_to(validator.address).await)
        .verify_token(pb::VerifyTokenRequest {
            jwt,
            ..Default::default()
        })
        .await
        .unwrap();

    let verify = "sigil.v1.ValidatorService/VerifyToken";
    let get_jwks = "sigil.v1.IssuerService/GetJwks";
    eventually("both services' spans at the collector", || {
        telemetry.flush();
        let receiver = receiver.clone();
        async move {
            let spans = receiver.0.lock().unwrap();
            let servers = spans.iter().filter(|span| span.name == get_jwks).count();
            spans.iter().any(|span| span.name == verify) && servers >= 2
        }
    })
    .await;

    let verify_span = receiver.named(verify).unwrap();
    let spans = receiver.0.lock().unwrap().clone();
    // The validator's client span, and the issuer's server span under it.
    let client = spans
        .iter()
        .find(|span| span.name == get_jwks && span.parent_span_id == verify_span.span_id)
        .expect("the validator's GetJwks call is a child of VerifyToken");
    let server = spans
        .iter()
        .find(|span| span.name == get_jwks && span.parent_span_id == client.span_id)
        .expect("the issuer's GetJwks span is a child of the validator's call");
    assert_eq!(client.trace_id, verify_span.trace_id);
    assert_eq!(server.trace_id, verify_span.trace_id);
}
