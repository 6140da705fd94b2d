//! Redis down means UNAVAILABLE and NOT_SERVING, never "valid"; Redis back
//! means service again, without a restart.

use sigil_proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::harness::{Harness, assert_error, eventually};

async fn health_is(h: &Harness, service: &str, wanted: ServingStatus) -> bool {
    let answer = h
        .health()
        .await
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await;
    answer.is_ok_and(|answer| answer.into_inner().status() == wanted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_unavailable_then_recovers_without_restart() {
    let mut h = Harness::redis().await;
    let validator_name = "sigil.v1.ValidatorService";
    eventually("SERVING", || {
        health_is(&h, validator_name, ServingStatus::Serving)
    })
    .await;
    let (created, _) = h.active_session("ivan", &["token:read"], vec![]).await;
    let mut validator = h.validator().await;
    let mut issuer = h.issuer().await;

    h.redis.as_mut().unwrap().stop();

    let result = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key.clone(),
            ..Default::default()
        })
        .await;
    let status = assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
    assert!(
        !status.message().contains("redis://"),
        "no store address in {status:?}"
    );
    let result = issuer
        .create_session(pb::CreateSessionRequest::default())
        .await;
    assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
    for service in [
        "sigil.v1.IssuerService",
        validator_name,
        "sigil.v1.EdgeTokenService",
    ] {
        eventually("NOT_SERVING", || {
            health_is(&h, service, ServingStatus::NotServing)
        })
        .await;
    }
    // The process itself is alive: liveness probes must not restart it.
    assert!(health_is(&h, "", ServingStatus::Serving).await);

    // Redis comes back empty (it kept nothing on disk): the old session is
    // gone, and new sessions work through the same service.
    h.redis.as_mut().unwrap().restart().await;
    eventually("SERVING again", || {
        health_is(&h, validator_name, ServingStatus::Serving)
    })
    .await;
    let result = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key,
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
    let (again, _) = h.active_session("ivan", &["token:read"], vec![]).await;
    let who = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: again.session_key,
            ..Default::default()
        })
        .await;
    assert!(who.is_ok());
}
