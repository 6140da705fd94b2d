//! The nonce works exactly once, and only while it lasts.

use std::time::Duration;

use sigil_proto::v1 as pb;
use tokio::task::JoinSet;
use tonic::Code;

use crate::harness::{Harness, admin, assert_error};

all_stores!(
    reused_nonce_is_not_found,
    concurrent_authorizations_with_one_nonce_have_one_winner,
    expired_nonce_is_not_found,
    malformed_or_forged_nonce_is_not_found,
    nonce_of_a_revoked_pending_session_is_not_found,
);

fn authorize(nonce: &str) -> tonic::Request<pb::AuthorizeSessionRequest> {
    admin(pb::AuthorizeSessionRequest {
        nonce: nonce.into(),
        permissions: vec!["token:read".into()],
        ..Default::default()
    })
}

async fn create(h: &Harness, pending_ttl: Option<Duration>) -> pb::CreateSessionResponse {
    h.issuer()
        .await
        .create_session(pb::CreateSessionRequest {
            pending_ttl: pending_ttl.map(|ttl| prost_types::Duration {
                seconds: i64::try_from(ttl.as_secs()).unwrap(),
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn reused_nonce_is_not_found(h: Harness) {
    let created = create(&h, None).await;
    let mut issuer = h.issuer().await;
    assert!(
        issuer
            .authorize_session(authorize(&created.nonce))
            .await
            .is_ok()
    );
    let again = issuer.authorize_session(authorize(&created.nonce)).await;
    assert_error(again, Code::NotFound, "NONCE_NOT_FOUND");
}

async fn concurrent_authorizations_with_one_nonce_have_one_winner(h: Harness) {
    let created = create(&h, None).await;
    let issuer = h.issuer().await;
    let mut racers = JoinSet::new();
    for _ in 0..50 {
        let mut issuer = issuer.clone();
        let nonce = created.nonce.clone();
        racers.spawn(async move { issuer.authorize_session(authorize(&nonce)).await });
    }
    let mut winners = 0;
    while let Some(result) = racers.join_next().await {
        match result.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        }
    }
    assert_eq!(winners, 1);
}

async fn expired_nonce_is_not_found(h: Harness) {
    let created = create(&h, Some(Duration::from_secs(5))).await;
    h.clock.advance(Duration::from_secs(6));
    let result = h
        .issuer()
        .await
        .authorize_session(authorize(&created.nonce))
        .await;
    assert_error(result, Code::NotFound, "NONCE_NOT_FOUND");
}

async fn malformed_or_forged_nonce_is_not_found(h: Harness) {
    let created = create(&h, None).await;
    let mut issuer = h.issuer().await;
    // One character changed: the checksum catches it, no store trip needed.
    let mut forged = created.nonce.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let made_up = "sigil_nonce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for nonce in [
        forged.as_str(),
        made_up,
        "not-a-nonce",
        created.session_key.as_str(),
    ] {
        let result = issuer.authorize_session(authorize(nonce)).await;
        assert_error(result, Code::NotFound, "NONCE_NOT_FOUND");
    }
    // The real nonce still works after all that.
    assert!(
        issuer
            .authorize_session(authorize(&created.nonce))
            .await
            .is_ok()
    );
}

async fn nonce_of_a_revoked_pending_session_is_not_found(h: Harness) {
    let created = create(&h, None).await;
    let mut issuer = h.issuer().await;
    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        }))
        .await
        .unwrap();
    let result = issuer.authorize_session(authorize(&created.nonce)).await;
    assert_error(result, Code::NotFound, "NONCE_NOT_FOUND");
}
