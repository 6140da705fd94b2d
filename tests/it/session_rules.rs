//! Lifecycle rules beyond the basic flow: revoking all other sessions,
//! assurance levels and step-up, the extend window, and listing by state.

use sigil_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Harness, admin, assert_error, assert_invalid};

both_stores!(revoking_all_other_sessions_keeps_the_current_one,);

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
