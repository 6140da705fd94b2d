//! The whole session lifecycle: create → authorize → WhoAmI → CheckAccess →
//! extend → revoke → UNAUTHENTICATED.

use std::time::Duration;

use sigil_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Harness, admin, assert_error, with_bearer};

all_stores!(
    whole_flow_ends_unauthenticated_after_revoke,
    pending_session_grants_nothing,
    expired_session_is_unauthenticated,
    extend_moves_expiry_later_and_never_shortens,
    extending_a_revoked_session_fails_precondition,
    revoking_twice_changes_nothing,
    subject_sessions_are_listed_in_pages_and_revoked_together,
);

async fn whole_flow_ends_unauthenticated_after_revoke(h: Harness) {
    let mut issuer = h.issuer().await;
    let mut validator = h.validator().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "alice".into(),
            metadata: [("user_agent".to_owned(), "curl/8".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.session_id.starts_with("sess_"));
    assert!(created.session_key.starts_with("sigil_sk_"));
    assert!(created.nonce.starts_with("sigil_nonce_"));

    let session = issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce.clone(),
            permissions: vec!["token:read".into()],
            rules: vec![pb::AccessRule {
                priority: 1,
                description: "reveal PCI tokens".into(),
                resource: "tokens/pci/*".into(),
                permissions: vec!["token:reveal".into()],
            }],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(session.id, created.session_id);
    assert_eq!(session.state(), pb::SessionState::Active);
    assert_eq!(session.subject, "alice");
    assert_eq!(session.metadata["user_agent"], "curl/8");

    // The token works from the field, the bearer header and x-session-token.
    let who = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.session.unwrap().id, created.session_id);
    let who = validator
        .who_am_i(with_bearer(
            pb::WhoAmIRequest::default(),
            &created.session_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.session.unwrap().permissions, ["token:read"]);
    let mut request = tonic::Request::new(pb::WhoAmIRequest::default());
    request
        .metadata_mut()
        .insert("x-session-token", created.session_key.parse().unwrap());
    assert!(validator.who_am_i(request).await.is_ok());

    let allowed = validator
        .check_access(pb::CheckAccessRequest {
            session_token: created.session_key.clone(),
            permission: "token:reveal".into(),
            resource: "tokens/pci/4111".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(allowed.allowed);
    assert_eq!(allowed.subject, "alice");
    assert_eq!(allowed.deciding_rule.unwrap().resource, "tokens/pci/*");

    let extended = issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: created.session_id.clone(),
            lifespan: Some(prost_types::Duration {
                seconds: 48 * 3600,
                nanos: 0,
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert!(extended.expires_at.unwrap().seconds > session.expires_at.unwrap().seconds);

    let revoked = issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(revoked.state(), pb::SessionState::Revoked);
    assert!(revoked.revoked_at.is_some());

    let result = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key.clone(),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
    let result = validator
        .check_access(pb::CheckAccessRequest {
            session_token: created.session_key,
            permission: "token:read".into(),
            resource: String::new(),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");

    // An admin still sees the revoked session until it would have expired.
    let fetched = issuer
        .get_session(admin(pb::GetSessionRequest {
            session_id: created.session_id,
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(fetched.state(), pb::SessionState::Revoked);
}

async fn pending_session_grants_nothing(h: Harness) {
    let created = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let result = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key,
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
}

async fn expired_session_is_unauthenticated(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let mut validator = h.validator().await;
    let who = |token: String| pb::WhoAmIRequest {
        tokenize_as: String::new(),
        session_token: token,
        ..Default::default()
    };
    assert!(
        validator
            .who_am_i(who(created.session_key.clone()))
            .await
            .is_ok()
    );

    h.clock
        .advance(h.policy.default_lifespan + Duration::from_secs(1));
    let result = validator.who_am_i(who(created.session_key)).await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
}

async fn extend_moves_expiry_later_and_never_shortens(h: Harness) {
    let (created, session) = h.active_session("", &["token:read"], vec![]).await;
    let mut issuer = h.issuer().await;
    let extend = |seconds: i64| {
        admin(pb::ExtendSessionRequest {
            session_id: created.session_id.clone(),
            lifespan: Some(prost_types::Duration { seconds, nanos: 0 }),
        })
    };
    let shorter = issuer
        .extend_session(extend(60))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shorter.session.unwrap().expires_at, session.expires_at);

    h.clock.advance(Duration::from_secs(3600));
    let longer = issuer
        .extend_session(extend(48 * 3600))
        .await
        .unwrap()
        .into_inner();
    let expected = session.expires_at.unwrap().seconds + 25 * 3600;
    let expires_at = longer.session.unwrap().expires_at.unwrap().seconds;
    assert!(
        (expected - 1..=expected + 1).contains(&expires_at),
        "{expires_at} vs {expected}"
    );

    // The later expiry is what the validator enforces.
    h.clock.advance(h.policy.default_lifespan);
    let who = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key,
            ..Default::default()
        })
        .await;
    assert!(who.is_ok());
}

async fn extending_a_revoked_session_fails_precondition(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let mut issuer = h.issuer().await;
    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        }))
        .await
        .unwrap();
    let result = issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: created.session_id,
            lifespan: None,
        }))
        .await;
    assert_error(result, Code::FailedPrecondition, "SESSION_NOT_ACTIVE");
}

async fn revoking_twice_changes_nothing(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let mut issuer = h.issuer().await;
    let revoke = || {
        admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        })
    };
    let first = issuer.revoke_session(revoke()).await.unwrap().into_inner();
    h.clock.advance(Duration::from_secs(5));
    let second = issuer.revoke_session(revoke()).await.unwrap().into_inner();
    assert_eq!(
        first.session.unwrap().revoked_at,
        second.session.unwrap().revoked_at
    );
}

async fn subject_sessions_are_listed_in_pages_and_revoked_together(h: Harness) {
    let mut issuer = h.issuer().await;
    let mut bob_keys = Vec::new();
    for _ in 0..3 {
        let (created, _) = h.active_session("bob", &["token:read"], vec![]).await;
        bob_keys.push(created.session_key);
        h.clock.advance(Duration::from_millis(5));
    }
    // A pending session of bob's counts too.
    issuer
        .create_session(pb::CreateSessionRequest {
            subject: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (carol, _) = h.active_session("carol", &["token:read"], vec![]).await;

    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = issuer
            .list_sessions(admin(pb::ListSessionsRequest {
                subject: "bob".into(),
                page_size: 2,
                page_token,
                states: vec![],
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.sessions.len() <= 2);
        listed.extend(page.sessions);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|session| session.subject == "bob"));
    let created: Vec<_> = listed
        .iter()
        .map(|session| session.created_at.unwrap())
        .collect();
    assert!(
        created
            .windows(2)
            .all(|pair| (pair[0].seconds, pair[0].nanos) <= (pair[1].seconds, pair[1].nanos))
    );

    let revoke = || {
        admin(pb::RevokeSubjectSessionsRequest {
            subject: "bob".into(),
            except_session_id: String::new(),
        })
    };
    let revoked = issuer
        .revoke_subject_sessions(revoke())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_count, 4);
    let again = issuer
        .revoke_subject_sessions(revoke())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.revoked_count, 0);

    let mut validator = h.validator().await;
    for key in bob_keys {
        let result = validator
            .who_am_i(pb::WhoAmIRequest {
                session_token: key,
                tokenize_as: String::new(),
                ..Default::default()
            })
            .await;
        assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
    }
    let carol_still = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: carol.session_key,
            ..Default::default()
        })
        .await;
    assert!(carol_still.is_ok());
}
