//! Abuse limits on the one call anyone may make.

use sigil_proto::v1 as pb;
use sigil_runtime::{CreateSessionRates, RateLimits};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{
    Harness, IssuerServiceClient, Role, Server, assert_error, channel_to, listener,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_session_flood_from_one_peer_is_rate_limited_with_retry_info() {
    let h = Harness::memory().await;
    let mut context = h.context.clone();
    context.rate_limits = RateLimits::new(CreateSessionRates {
        per_peer: 3,
        global: 0,
    });
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let mut issuer = IssuerServiceClient::new(channel_to(server.address).await);

    let mut created = 0;
    let mut refusal = None;
    for _ in 0..50 {
        match issuer
            .create_session(pb::CreateSessionRequest::default())
            .await
        {
            Ok(_) => created += 1,
            Err(status) => {
                refusal = Some(Err::<tonic::Response<()>, _>(status));
                break;
            }
        }
    }
    assert!(created >= 1, "the burst is admitted");
    let status = assert_error(
        refusal.expect("the flood was limited"),
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.is_some_and(|delay| !delay.is_zero()));

    // Other calls are not limited by it; the default limits admit the
    // harness's own issuer as before.
    assert!(
        h.issuer()
            .await
            .create_session(pb::CreateSessionRequest::default())
            .await
            .is_ok()
    );
}
