//! WhoAmI and CheckAccess: what a token may do, and every way a token is
//! refused alike.

use sigil_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Harness, assert_error};

all_stores!(
    check_access_follows_permissions_then_the_deciding_rule,
    session_id_is_not_a_session_key,
    malformed_unknown_and_absent_tokens_are_unauthenticated,
);

fn rule(priority: i32, resource: &str, permissions: &[&str]) -> pb::AccessRule {
    pb::AccessRule {
        priority,
        description: String::new(),
        resource: resource.into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
    }
}

async fn check_access_follows_permissions_then_the_deciding_rule(h: Harness) {
    let rules = vec![
        // Given out of order: evaluation goes by priority, not position.
        rule(20, "tokens/**", &["token:read", "token:update"]),
        rule(10, "tokens/pci/*", &["token:reveal"]),
    ];
    let (created, _) = h.active_session("erin", &["token:create"], rules).await;
    let mut validator = h.validator().await;
    // (permission, resource, allowed, by permission, deciding rule priority)
    let table: &[(&str, &str, bool, bool, Option<i32>)] = &[
        ("token:create", "", true, true, None),
        ("token:create", "anything/at/all", true, true, None),
        ("token:reveal", "tokens/pci/4111", true, false, Some(10)),
        // The PCI rule decides for PCI tokens, even though the broader rule
        // would grant read.
        ("token:read", "tokens/pci/4111", false, false, Some(10)),
        ("token:read", "tokens/pii/42", true, false, Some(20)),
        ("token:update", "tokens/pci/a/b", true, false, Some(20)),
        ("token:delete", "tokens/pii/42", false, false, Some(20)),
        ("token:read", "keys/1", false, false, None),
        // No resource: only the session's own permissions count.
        ("token:reveal", "", false, false, None),
    ];
    for &(permission, resource, allowed, by_permission, deciding) in table {
        let answer = validator
            .check_access(pb::CheckAccessRequest {
                session_token: created.session_key.clone(),
                permission: permission.into(),
                resource: resource.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let case = format!("{permission} on {resource:?}");
        assert_eq!(answer.allowed, allowed, "allowed for {case}");
        assert_eq!(
            answer.granted_by_permission, by_permission,
            "by permission for {case}"
        );
        assert_eq!(
            answer.deciding_rule.map(|rule| rule.priority),
            deciding,
            "rule for {case}"
        );
        assert_eq!(answer.session_id, created.session_id);
        assert_eq!(answer.subject, "erin");
    }
}

async fn session_id_is_not_a_session_key(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let result = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_id,
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
}

async fn malformed_unknown_and_absent_tokens_are_unauthenticated(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let mut flipped = created.session_key.clone().into_bytes();
    flipped[20] = if flipped[20] == b'x' { b'y' } else { b'x' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let tokens = [
        String::new(),
        "garbage".into(),
        "sigil_sk_".into(),
        flipped,
        created.nonce.clone(),
        other.session_key,
        format!("{} ", created.session_key),
        "sigil_sk_".to_owned() + &"A".repeat(70),
        "x".repeat(50_000),
    ];
    let mut validator = h.validator().await;
    for token in tokens {
        let result = validator
            .who_am_i(pb::WhoAmIRequest {
                tokenize_as: String::new(),
                session_token: token.clone(),
                ..Default::default()
            })
            .await;
        let status = assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
        assert_eq!(
            status.message(),
            "session token invalid",
            "no hint for {token:.40}"
        );
    }
}
