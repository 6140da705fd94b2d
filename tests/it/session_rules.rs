//! Lifecycle rules beyond the basic flow: revoking all other sessions,
//! assurance levels and step-up, the extend window, and listing by state.

use std::time::Duration;

use sigil_domain::{Clock, SessionPolicy};
use sigil_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Harness, admin, assert_error, assert_invalid};

all_stores!(
    revoking_all_other_sessions_keeps_the_current_one,
    a_session_below_the_required_level_must_step_up,
    page_tokens_work_only_for_their_subject_and_filter,
);

async fn revoking_all_other_sessions_keeps_the_current_one(h: Harness) {
    let (current, _) = h.active_session("erin", &["a:read"], vec![]).await;
    let (other, _) = h.active_session("erin", &["a:read"], vec![]).await;
    let (third, _) = h.active_session("erin", &["a:read"], vec![]).await;
    let mut issuer = h.issuer().await;
    let revoke = |except: &str| {
        admin(pb::RevokeSubjectSessionsRequest {
            subject: "erin".into(),
            except_session_id: except.into(),
        })
    };
    assert_invalid(
        issuer.revoke_subject_sessions(revoke("sess_nope")).await,
        "except_session_id",
    );
    let revoked = issuer
        .revoke_subject_sessions(revoke(&current.session_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_count, 2);

    let mut validator = h.validator().await;
    let who = |token: &str| pb::WhoAmIRequest {
        session_token: token.into(),
        ..Default::default()
    };
    assert!(validator.who_am_i(who(&current.session_key)).await.is_ok());
    for gone in [&other, &third] {
        assert_error(
            validator.who_am_i(who(&gone.session_key)).await,
            Code::Unauthenticated,
            "SESSION_INVALID",
        );
    }
}

/// An active session of `subject` authorized at `level`, and its key.
async fn session_at(
    h: &Harness,
    subject: &str,
    level: pb::AssuranceLevel,
) -> (String, pb::Session) {
    let mut issuer = h.issuer().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest {
            subject: subject.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let session = issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["a:read".into()],
            assurance_level: level.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    (created.session_key, session)
}

async fn a_session_below_the_required_level_must_step_up(h: Harness) {
    // A level that names none is refused before the nonce is touched.
    let created = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let bad = h
        .issuer()
        .await
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["a:read".into()],
            assurance_level: 7,
            ..Default::default()
        }))
        .await;
    assert_invalid(bad, "assurance_level");

    let (one_factor, session) = session_at(&h, "fay", pb::AssuranceLevel::Unspecified).await;
    assert_eq!(session.assurance_level(), pb::AssuranceLevel::Aal1);
    let (two_factors, session) = session_at(&h, "fay", pb::AssuranceLevel::Aal2).await;
    assert_eq!(session.assurance_level(), pb::AssuranceLevel::Aal2);

    let mut validator = h.validator().await;
    let who = |token: &str, level: pb::AssuranceLevel| pb::WhoAmIRequest {
        session_token: token.into(),
        required_assurance_level: level.into(),
        ..Default::default()
    };
    let check = |token: &str, level: pb::AssuranceLevel| pb::CheckAccessRequest {
        session_token: token.into(),
        permission: "a:read".into(),
        required_assurance_level: level.into(),
        ..Default::default()
    };
    for level in [pb::AssuranceLevel::Unspecified, pb::AssuranceLevel::Aal1] {
        assert!(validator.who_am_i(who(&one_factor, level)).await.is_ok());
        assert!(
            validator
                .check_access(check(&one_factor, level))
                .await
                .is_ok()
        );
    }
    let aal2 = pb::AssuranceLevel::Aal2;
    let answer = validator.who_am_i(who(&two_factors, aal2)).await.unwrap();
    assert_eq!(
        answer.into_inner().session.unwrap().assurance_level(),
        pb::AssuranceLevel::Aal2
    );
    assert!(
        validator
            .check_access(check(&two_factors, aal2))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );

    // A known holder who must step up: PERMISSION_DENIED, not UNAUTHENTICATED.
    assert_error(
        validator.who_am_i(who(&one_factor, aal2)).await,
        Code::PermissionDenied,
        "SESSION_AAL2_REQUIRED",
    );
    assert_error(
        validator.check_access(check(&one_factor, aal2)).await,
        Code::PermissionDenied,
        "SESSION_AAL2_REQUIRED",
    );
    // A bad token is still UNAUTHENTICATED, whatever level is asked for.
    assert_error(
        validator.who_am_i(who("sigil_sk_forged", aal2)).await,
        Code::Unauthenticated,
        "SESSION_INVALID",
    );
    let mut bad_level = who(&one_factor, aal2);
    bad_level.required_assurance_level = 9;
    assert_invalid(
        validator.who_am_i(bad_level).await,
        "required_assurance_level",
    );

    let results = validator
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens: vec![one_factor, two_factors],
            required_assurance_level: aal2.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    match &results[0].result {
        Some(pb::batch_who_am_i_result::Result::Error(error)) => {
            assert_eq!(error.code, i32::from(Code::PermissionDenied));
            assert_eq!(error.reason, "SESSION_AAL2_REQUIRED");
        }
        other => panic!("expected a step-up error, got {other:?}"),
    }
    assert!(matches!(
        results[1].result,
        Some(pb::batch_who_am_i_result::Result::Session(_))
    ));
}

/// A policy that extends only sessions expiring within the hour.
fn hour_window() -> SessionPolicy {
    SessionPolicy {
        earliest_possible_extend: Some(Duration::from_secs(3600)),
        ..SessionPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_extend_waits_for_the_window() {
    extend_waits_for_the_window(Harness::memory_with_policy(hour_window()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_extend_waits_for_the_window() {
    extend_waits_for_the_window(Harness::redis_with_policy(hour_window()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_extend_waits_for_the_window() {
    extend_waits_for_the_window(Harness::redis_cluster_with_policy(hour_window()).await).await;
}

async fn extend_waits_for_the_window(h: Harness) {
    let (created, session) = h.active_session("gus", &["a:read"], vec![]).await;
    let mut issuer = h.issuer().await;
    let extend = || {
        admin(pb::ExtendSessionRequest {
            session_id: created.session_id.clone(),
            lifespan: Some(prost_types::Duration {
                seconds: 2 * 86_400,
                nanos: 0,
            }),
        })
    };
    // 24 hours left: too early, nothing changes, and the answer says so.
    let early = issuer.extend_session(extend()).await.unwrap().into_inner();
    assert!(!early.extended);
    assert_eq!(early.session.unwrap().expires_at, session.expires_at);

    // Within the last hour: extended by the lifespan asked for, from now.
    h.clock.advance(Duration::from_secs(23 * 3600 + 60));
    let late = issuer.extend_session(extend()).await.unwrap().into_inner();
    assert!(late.extended);
    let expires_at = late.session.unwrap().expires_at.unwrap();
    let now_secs = h.clock.now().unix_ms() / 1000;
    assert!((expires_at.seconds - now_secs - 2 * 86_400).abs() <= 1);

    // Beyond the maximum lifespan is still refused, window or not.
    let too_long = issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: created.session_id.clone(),
            lifespan: Some(prost_types::Duration {
                seconds: 31 * 86_400,
                nanos: 0,
            }),
        }))
        .await;
    assert_invalid(too_long, "lifespan");
}

/// A policy that keeps revoked sessions visible for an hour.
fn hour_retention() -> SessionPolicy {
    SessionPolicy {
        revoked_retention: Duration::from_secs(3600),
        ..SessionPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_listing_filters_by_state_and_forgets_revoked_after_retention() {
    listing_filters_by_state_and_forgets_revoked_after_retention(
        Harness::memory_with_policy(hour_retention()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_listing_filters_by_state_and_forgets_revoked_after_retention() {
    listing_filters_by_state_and_forgets_revoked_after_retention(
        Harness::redis_with_policy(hour_retention()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_listing_filters_by_state_and_forgets_revoked_after_retention() {
    listing_filters_by_state_and_forgets_revoked_after_retention(
        Harness::redis_cluster_with_policy(hour_retention()).await,
    )
    .await;
}

fn list(subject: &str, states: &[pb::SessionState]) -> tonic::Request<pb::ListSessionsRequest> {
    admin(pb::ListSessionsRequest {
        subject: subject.into(),
        states: states.iter().map(|state| i32::from(*state)).collect(),
        ..Default::default()
    })
}

async fn listing_filters_by_state_and_forgets_revoked_after_retention(h: Harness) {
    let mut issuer = h.issuer().await;
    // A "your devices" page: the context given at creation comes back.
    let device = [
        ("client_ip".to_owned(), "203.0.113.7".to_owned()),
        ("user_agent".to_owned(), "Firefox/140".to_owned()),
        ("device_name".to_owned(), "Ida's laptop".to_owned()),
    ];
    let laptop = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "ida".into(),
            metadata: device.clone().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: laptop.nonce,
            permissions: vec!["a:read".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    h.clock.advance(Duration::from_millis(5));
    let (revoked, _) = h.active_session("ida", &["a:read"], vec![]).await;
    h.issuer()
        .await
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: revoked.session_id.clone(),
        }))
        .await
        .unwrap();
    h.clock.advance(Duration::from_millis(5));
    let pending = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "ida".into(),
            pending_ttl: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let ids = |response: pb::ListSessionsResponse| -> Vec<String> {
        response
            .sessions
            .into_iter()
            .map(|session| session.id)
            .collect()
    };
    use pb::SessionState::{Active, Pending, Revoked};
    let all = issuer
        .list_sessions(list("ida", &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.sessions[0].metadata, device.into());
    assert_eq!(
        ids(all),
        [
            laptop.session_id.clone(),
            revoked.session_id.clone(),
            pending.session_id.clone()
        ]
    );
    for (states, expected) in [
        (vec![Active], vec![laptop.session_id.clone()]),
        (vec![Pending], vec![pending.session_id.clone()]),
        (vec![Revoked], vec![revoked.session_id.clone()]),
        (
            vec![Revoked, Active],
            vec![laptop.session_id.clone(), revoked.session_id.clone()],
        ),
    ] {
        let listed = issuer.list_sessions(list("ida", &states)).await.unwrap();
        assert_eq!(ids(listed.into_inner()), expected, "{states:?}");
    }
    let mut unspecified = list("ida", &[Active]);
    unspecified.get_mut().states.push(0);
    assert_invalid(issuer.list_sessions(unspecified).await, "states[1]");

    // After the retention the revoked session is gone; the others stay.
    h.clock.advance(Duration::from_secs(3600));
    let listed = issuer.list_sessions(list("ida", &[])).await.unwrap();
    assert_eq!(ids(listed.into_inner()), vec![laptop.session_id]);
    let gone = issuer
        .get_session(admin(pb::GetSessionRequest {
            session_id: revoked.session_id,
        }))
        .await;
    assert_error(gone, Code::NotFound, "SESSION_NOT_FOUND");
}

async fn page_tokens_work_only_for_their_subject_and_filter(h: Harness) {
    for subject in ["jo", "jo", "kim", "kim"] {
        h.active_session(subject, &["a:read"], vec![]).await;
    }
    let mut issuer = h.issuer().await;
    let mut first = list("jo", &[]);
    first.get_mut().page_size = 1;
    let page = issuer.list_sessions(first).await.unwrap().into_inner();
    assert_eq!(page.sessions.len(), 1);
    let token = page.next_page_token;
    assert!(!token.is_empty());
    assert!(!token.contains("sess_"), "the cursor is not readable");

    let next = |subject: &str, states: &[pb::SessionState], token: &str| {
        let mut request = list(subject, states);
        request.get_mut().page_token = token.into();
        request
    };
    let second = issuer
        .list_sessions(next("jo", &[], &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.sessions.len(), 1);
    assert_eq!(second.sessions[0].subject, "jo");

    // Replayed for another subject or another filter, or edited: refused.
    assert_invalid(
        issuer.list_sessions(next("kim", &[], &token)).await,
        "page_token",
    );
    assert_invalid(
        issuer
            .list_sessions(next("jo", &[pb::SessionState::Active], &token))
            .await,
        "page_token",
    );
    let mut edited = token.clone().into_bytes();
    let last = edited.len() - 1;
    edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    assert_invalid(
        issuer.list_sessions(next("jo", &[], &edited)).await,
        "page_token",
    );
}
