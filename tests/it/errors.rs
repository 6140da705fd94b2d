//! Bad input gets INVALID_ARGUMENT naming the field and changes nothing;
//! an oversized request gets RESOURCE_EXHAUSTED.

use sigil_proto::v1 as pb;
use sigil_runtime::Limits;
use tonic::Code;

use crate::harness::{
    Harness, Role, Server, admin, assert_error, assert_invalid, channel_to, listener, python,
};

all_stores!(
    malformed_create_requests_name_the_field,
    malformed_authorizations_name_the_field_and_keep_the_nonce,
    malformed_admin_requests_name_the_field,
    malformed_check_access_names_the_field,
    oversized_request_is_resource_exhausted,
);

async fn malformed_create_requests_name_the_field(h: Harness) {
    let mut issuer = h.issuer().await;
    let many: std::collections::HashMap<String, String> =
        (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
    let cases = [
        (
            pb::CreateSessionRequest {
                subject: "bad\nsubject".into(),
                ..Default::default()
            },
            "subject",
        ),
        (
            pb::CreateSessionRequest {
                subject: "s".repeat(257),
                ..Default::default()
            },
            "subject",
        ),
        (
            pb::CreateSessionRequest {
                metadata: many,
                ..Default::default()
            },
            "metadata",
        ),
        (
            pb::CreateSessionRequest {
                metadata: [("bad key".to_owned(), "v".to_owned())].into(),
                ..Default::default()
            },
            "metadata",
        ),
        (
            pb::CreateSessionRequest {
                pending_ttl: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "pending_ttl",
        ),
        (
            pb::CreateSessionRequest {
                pending_ttl: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "pending_ttl",
        ),
        (
            pb::CreateSessionRequest {
                pending_ttl: Some(prost_types::Duration {
                    seconds: 365 * 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "pending_ttl",
        ),
    ];
    for (request, field) in cases {
        assert_invalid(issuer.create_session(request).await, field);
    }
}

async fn malformed_authorizations_name_the_field_and_keep_the_nonce(h: Harness) {
    let mut issuer = h.issuer().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good_rule = pb::AccessRule {
        priority: 1,
        description: String::new(),
        resource: "tokens/*".into(),
        permissions: vec!["token:read".into()],
    };
    let base = pb::AuthorizeSessionRequest {
        nonce: created.nonce.clone(),
        permissions: vec!["token:read".into()],
        ..Default::default()
    };
    let cases = [
        (
            pb::AuthorizeSessionRequest {
                permissions: vec![],
                ..base.clone()
            },
            "permissions",
        ),
        (
            pb::AuthorizeSessionRequest {
                permissions: vec!["token read".into()],
                ..base.clone()
            },
            "permissions[0]",
        ),
        (
            pb::AuthorizeSessionRequest {
                permissions: vec!["p".into(); 101],
                ..base.clone()
            },
            "permissions",
        ),
        (
            pb::AuthorizeSessionRequest {
                rules: vec![
                    good_rule.clone(),
                    pb::AccessRule {
                        resource: "tokens/[".into(),
                        priority: 2,
                        ..good_rule.clone()
                    },
                ],
                ..base.clone()
            },
            "rules[1].resource",
        ),
        (
            pb::AuthorizeSessionRequest {
                rules: vec![pb::AccessRule {
                    permissions: vec![],
                    ..good_rule.clone()
                }],
                ..base.clone()
            },
            "rules[0].permissions",
        ),
        (
            pb::AuthorizeSessionRequest {
                rules: vec![good_rule.clone(), good_rule.clone()],
                ..base.clone()
            },
            "rules[1].priority",
        ),
        (
            pb::AuthorizeSessionRequest {
                expires_at: Some(prost_types::Timestamp {
                    seconds: now - 60,
                    nanos: 0,
                }),
                ..base.clone()
            },
            "expires_at",
        ),
        (
            pb::AuthorizeSessionRequest {
                expires_at: Some(prost_types::Timestamp {
                    seconds: now + 400 * 86_400,
                    nanos: 0,
                }),
                ..base.clone()
            },
            "expires_at",
        ),
        (
            pb::AuthorizeSessionRequest {
                nonce: String::new(),
                ..base.clone()
            },
            "nonce",
        ),
    ];
    for (request, field) in cases {
        assert_invalid(issuer.authorize_session(admin(request)).await, field);
    }
    // None of those consumed the nonce.
    assert!(issuer.authorize_session(admin(base)).await.is_ok());
}

async fn malformed_admin_requests_name_the_field(h: Harness) {
    let mut issuer = h.issuer().await;
    for id in [
        "",
        "sess_123",
        "sess_ZZZZ5b2f76ee714939ff6bc6858cc8d0",
        "sigil_sk_x",
    ] {
        let result = issuer
            .get_session(admin(pb::GetSessionRequest {
                session_id: id.into(),
            }))
            .await;
        assert_invalid(result, "session_id");
        let result = issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: id.into(),
            }))
            .await;
        assert_invalid(result, "session_id");
    }
    let unknown = "sess_00000000000000000000000000000000";
    let result = issuer
        .get_session(admin(pb::GetSessionRequest {
            session_id: unknown.into(),
        }))
        .await;
    assert_error(result, Code::NotFound, "SESSION_NOT_FOUND");
    let result = issuer
        .list_sessions(admin(pb::ListSessionsRequest {
            subject: String::new(),
            ..Default::default()
        }))
        .await;
    assert_invalid(result, "subject");
    let result = issuer
        .list_sessions(admin(pb::ListSessionsRequest {
            subject: "bob".into(),
            page_size: -1,
            ..Default::default()
        }))
        .await;
    assert_invalid(result, "page_size");
    let result = issuer
        .list_sessions(admin(pb::ListSessionsRequest {
            subject: "bob".into(),
            page_token: "%%%".into(),
            ..Default::default()
        }))
        .await;
    assert_invalid(result, "page_token");
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let result = issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: created.session_id,
            lifespan: Some(prost_types::Duration {
                seconds: 400 * 86_400,
                nanos: 0,
            }),
        }))
        .await;
    assert_invalid(result, "lifespan");
    let result = issuer
        .revoke_subject_sessions(admin(pb::RevokeSubjectSessionsRequest::default()))
        .await;
    assert_invalid(result, "subject");
}

async fn malformed_check_access_names_the_field(h: Harness) {
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    let mut validator = h.validator().await;
    for (permission, resource, field) in [
        ("", "r", "permission"),
        ("has space", "r", "permission"),
        ("token:read", &*"r".repeat(1025), "resource"),
    ] {
        let result = validator
            .check_access(pb::CheckAccessRequest {
                session_token: created.session_key.clone(),
                permission: permission.into(),
                resource: resource.into(),
                ..Default::default()
            })
            .await;
        assert_invalid(result, field);
    }
}

async fn oversized_request_is_resource_exhausted(h: Harness) {
    let limit = Limits::default().max_request_bytes;
    let mut issuer = h.issuer().await;
    let result = issuer
        .create_session(pb::CreateSessionRequest {
            metadata: [("blob".to_owned(), "x".repeat(limit + 1))].into(),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::ResourceExhausted, "REQUEST_TOO_LARGE");
    let result = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: "x".repeat(limit + 1),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::ResourceExhausted, "REQUEST_TOO_LARGE");
    // The connection is still good for a normal call.
    assert!(
        issuer
            .create_session(pb::CreateSessionRequest::default())
            .await
            .is_ok()
    );
}

/// A path the port does not serve: a plain HTTP client (Python's urllib)
/// gets a 404, a gRPC call UNIMPLEMENTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unserved_path_is_404_over_http_and_unimplemented_over_grpc() {
    let h = Harness::memory().await;
    let script = "import sys, urllib.request, urllib.error\n\
        try:\n    urllib.request.urlopen(f'http://{sys.argv[1]}/no/such/path')\n\
        except urllib.error.HTTPError as error:\n    print(error.code)";
    let output = std::process::Command::new(python())
        .args(["-c", script, &h.address.to_string()])
        .output()
        .expect("the .venv python runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "404");

    // A validator alone serves no IssuerService.
    let validator_only = Server::spawn(
        &h.context,
        Role::Validator { issuer: h.address },
        listener().await,
    );
    let channel = channel_to(validator_only.address).await;
    let refused = pb::issuer_service_client::IssuerServiceClient::new(channel)
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect_err("no issuer here");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
}
