//! A slow Redis and a flood: answers come quickly and are never "valid"
//! when they cannot be known, and health is answered throughout.

use sigil_proto::v1 as pb;
use sigil_runtime::Limits;
use std::time::Duration;
use tokio::task::JoinSet;

use tonic::{Code, transport::Channel};
use tonic_health::pb::HealthCheckRequest;

use crate::harness::{Harness, ValidatorServiceClient, assert_error, eventually};

/// Pauses every Redis client command for `millis`, as a stalled Redis
/// would. (`CLIENT UNPAUSE` would be paused too: the pause just runs out.)
async fn pause_redis(h: &Harness, millis: u64) {
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(millis)
        .arg("ALL")
        .query_async(&mut redis)
        .await
        .unwrap();
}

/// Waits until WhoAmI with `token` works again.
async fn recovered(validator: &ValidatorServiceClient<Channel>, token: &str) {
    eventually("Redis back", || {
        let mut validator = validator.clone();
        let request = who(token);
        async move { validator.who_am_i(request).await.is_ok() }
    })
    .await;
}

fn who(token: &str) -> pb::WhoAmIRequest {
    pb::WhoAmIRequest {
        session_token: token.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_gives_deadline_exceeded_or_unavailable_never_valid() {
    // The server's own deadline, shorter than the store's.
    let h = Harness::redis_with(Limits {
        max_request_time: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    let (created, _) = h.active_session("lena", &["token:read"], vec![]).await;
    let mut validator = h.validator().await;
    pause_redis(&h, 2_000).await;
    let result = validator.who_am_i(who(&created.session_key)).await;
    assert_error(result, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    recovered(&validator, &created.session_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_gives_unavailable_at_the_store_deadline() {
    let h = Harness::redis().await;
    let (created, _) = h.active_session("nina", &["token:read"], vec![]).await;
    let mut validator = h.validator().await;
    pause_redis(&h, 3_000).await;
    // The store's deadline (500 ms here) answers, long before Redis would.
    let result = validator.who_am_i(who(&created.session_key)).await;
    assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
    recovered(&validator, &created.session_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_beyond_the_concurrency_bound_is_refused_at_once() {
    let h = Harness::redis_with(Limits {
        max_concurrent_requests: 2,
        ..Limits::default()
    })
    .await;
    let (created, _) = h.active_session("mona", &["token:read"], vec![]).await;
    let validator = h.validator().await;
    pause_redis(&h, 2_000).await;

    let mut flood = JoinSet::new();
    for _ in 0..20 {
        let mut validator = validator.clone();
        let token = created.session_key.clone();
        flood.spawn(async move { validator.who_am_i(who(&token)).await });
    }
    // Health is answered while the flood holds every slot.
    let health = h
        .health()
        .await
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "{health:?}");

    let mut overloaded = 0;
    while let Some(answer) = flood.join_next().await {
        let status = answer
            .unwrap()
            .expect_err("nothing is valid while Redis is stalled");
        match status.code() {
            Code::ResourceExhausted => overloaded += 1,
            Code::Unavailable => {}
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    assert!(overloaded >= 1, "the bound of 2 refused none of 20 calls");
    recovered(&validator, &created.session_key).await;
}
