//! Abuse limits on the one call anyone may make.

use sigil_proto::v1 as pb;
use sigil_runtime::{CreateSessionRates, RateLimits};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{
    Harness, IssuerServiceClient, Role, Server, StoreBounds, admin, assert_error, channel_to,
    listener,
};

/// Makes `call` up to fifty times in a row and returns the refusal that
/// ended the burst, having checked that the burst was admitted at first,
/// then refused as RATE_LIMITED with a RetryInfo saying when to retry.
pub(crate) async fn flood_until_rate_limited<T, F, Fut>(mut call: F) -> tonic::Status
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut admitted = 0;
    let mut refusal = None;
    for _ in 0..50 {
        match call().await {
            Ok(_) => admitted += 1,
            Err(status) => {
                refusal = Some(Err::<tonic::Response<()>, _>(status));
                break;
            }
        }
    }
    assert!(admitted >= 1, "the burst is admitted");
    let status = assert_error(
        refusal.expect("the flood was limited"),
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.is_some_and(|delay| !delay.is_zero()));
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_session_flood_from_one_peer_is_rate_limited_with_retry_info() {
    let h = Harness::memory().await;
    let mut context = h.context.clone();
    context.rate_limits = RateLimits::new(CreateSessionRates {
        per_peer: 3,
        global: 0,
    });
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let issuer = IssuerServiceClient::new(channel_to(server.address).await);

    flood_until_rate_limited(|| {
        let mut issuer = issuer.clone();
        async move {
            issuer
                .create_session(pb::CreateSessionRequest::default())
                .await
        }
    })
    .await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pending_sessions_are_capped() {
    pending_sessions_are_capped(Harness::memory_bounded(three_pending()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pending_sessions_are_capped() {
    pending_sessions_are_capped(Harness::redis_bounded(three_pending()).await).await;
}

fn three_pending() -> StoreBounds {
    StoreBounds {
        max_pending_sessions: 3,
        ..StoreBounds::default()
    }
}

/// A flood of CreateSession cannot fill the store: past the cap on pending
/// sessions it is refused, writing nothing, until a nonce is used (or a
/// pending session revoked or expired).
async fn pending_sessions_are_capped(h: Harness) {
    let mut issuer = h.issuer().await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(
            issuer
                .create_session(pb::CreateSessionRequest::default())
                .await
                .expect("under the cap")
                .into_inner(),
        );
    }
    assert_error(
        issuer
            .create_session(pb::CreateSessionRequest::default())
            .await,
        Code::ResourceExhausted,
        "PENDING_SESSIONS_FULL",
    );
    // Nothing of the refused call was kept: three sessions, three events.
    let events = h
        .events()
        .await
        .list_events(admin(pb::ListEventsRequest::default()))
        .await
        .expect("listed")
        .into_inner()
        .events;
    assert_eq!(events.len(), 3);

    // Using a nonce frees its place; so does revoking a pending session.
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: pending[0].nonce.clone(),
            permissions: vec!["read".into()],
            ..Default::default()
        }))
        .await
        .expect("authorized");
    issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect("a place was freed by the authorization");
    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: pending[1].session_id.clone(),
        }))
        .await
        .expect("revoked");
    issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect("a place was freed by the revocation");
    assert_error(
        issuer
            .create_session(pb::CreateSessionRequest::default())
            .await,
        Code::ResourceExhausted,
        "PENDING_SESSIONS_FULL",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_over_a_keys_rate_are_rate_limited_with_retry_info() {
    use sigil_domain::AdminKey;
    use sigil_runtime::AdminKeys;

    use crate::harness::{ADMIN_KEY, with_bearer};

    let other_key = "another-admin-key-0123456789abcdef";
    let h = Harness::memory().await;
    let mut context = h.context.clone();
    context.admin = AdminKeys::new(vec![
        AdminKey::from_configured(ADMIN_KEY).unwrap(),
        AdminKey::from_configured(other_key).unwrap(),
    ])
    .with_rate_per_key(3);
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let mut issuer = IssuerServiceClient::new(channel_to(server.address).await);
    let list = |key: &str| with_bearer(pb::ListTokenTemplatesRequest {}, key);

    let status = flood_until_rate_limited(|| {
        let mut issuer = issuer.clone();
        async move { issuer.list_token_templates(list(ADMIN_KEY)).await }
    })
    .await;
    assert!(
        !status.message().contains(ADMIN_KEY),
        "no key in {status:?}"
    );

    // The other key has a count of its own, a wrong key is refused as wrong,
    // and calls that need no admin key are not limited by it.
    assert!(issuer.list_token_templates(list(other_key)).await.is_ok());
    let wrong = issuer
        .list_token_templates(list("wrong-admin-key-0123456789abcdef"))
        .await;
    assert_error(wrong, Code::Unauthenticated, "ADMIN_KEY_INVALID");
    assert!(
        issuer
            .create_session(pb::CreateSessionRequest::default())
            .await
            .is_ok()
    );
    // The harness's own server keeps the default: no admin limit.
    let mut default_issuer = h.issuer().await;
    for _ in 0..10 {
        assert!(
            default_issuer
                .list_token_templates(list(ADMIN_KEY))
                .await
                .is_ok()
        );
    }
}
