//! The edge-token service over gRPC and HTTP: API tokens through create → validate
//! → revoke in every form, batches with Unleash Edge's semantics, one Redis
//! command per batch, and two instances sharing one Redis.

use std::time::Duration;

use serde_json::json;
use sigil_domain::Clock;
use sigil_proto::{convert::timestamp_to_pb, v1 as pb};
use sigil_runtime::Limits;
use tonic::{Code, transport::Channel};

use crate::harness::{EdgeTokenServiceClient, Harness, admin, assert_error, assert_invalid};

all_stores!(
    each_token_form_is_created_validated_and_revoked,
    mixed_batch_answers_valid_tokens_once_in_request_order,
    expired_token_is_not_listed_nor_revocable,
    empty_batch_gets_an_empty_answer,
    admin_calls_need_an_admin_key,
    bad_requests_name_the_field_and_write_nothing,
    list_filters_and_pages_without_secrets,
    oversized_batch_is_resource_exhausted,
    http_validate_answers_unleash_json,
    http_refuses_bad_requests_with_json_errors,
    python_client_gets_the_exact_json,
    http_only_listener_answers_edge_validate,
    http_chunked_body_over_the_limit_is_413,
);

/// Creates a token; returns its id and token string.
pub async fn create(
    client: &mut EdgeTokenServiceClient<Channel>,
    token_type: pb::ApiTokenType,
    projects: &[&str],
    environment: &str,
) -> (pb::ApiToken, String) {
    let created = client
        .create_api_token(admin(pb::CreateApiTokenRequest {
            token_name: "ci".into(),
            r#type: token_type.into(),
            projects: projects.iter().map(|p| p.to_string()).collect(),
            environment: environment.into(),
            expires_at: None,
        }))
        .await
        .expect("created")
        .into_inner();
    (created.api_token.expect("api_token"), created.token)
}

/// The token strings ValidateTokens answers for `tokens`.
pub async fn valid(client: &mut EdgeTokenServiceClient<Channel>, tokens: &[&str]) -> Vec<String> {
    client
        .validate_tokens(pb::ValidateTokensRequest {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
        })
        .await
        .expect("validated")
        .into_inner()
        .tokens
        .into_iter()
        .map(|token| token.token)
        .collect()
}

/// A token form: type, projects and environment asked for, the token
/// string's prefix, and the projects and environment answered.
type Form<'a> = (
    pb::ApiTokenType,
    &'a [&'a str],
    &'a str,
    &'a str,
    &'a [&'a str],
    &'a str,
);

async fn each_token_form_is_created_validated_and_revoked(h: Harness) {
    let mut client = h.edge_tokens().await;
    let cases: [Form; 5] = [
        (
            pb::ApiTokenType::Client,
            &["default"],
            "development",
            "default:development.",
            &["default"],
            "development",
        ),
        (
            pb::ApiTokenType::Backend,
            &["a", "b"],
            "production",
            "[]:production.",
            &["a", "b"],
            "production",
        ),
        (
            pb::ApiTokenType::Frontend,
            &["*"],
            "development",
            "*:development.",
            &["*"],
            "development",
        ),
        (
            pb::ApiTokenType::Backend,
            &["solo"],
            "dev.eu-1",
            "solo:dev.eu-1.",
            &["solo"],
            "dev.eu-1",
        ),
        (pb::ApiTokenType::Admin, &[], "", "*:*.", &["*"], "*"),
    ];
    for (token_type, projects, environment, prefix, answered_projects, answered_environment) in
        cases
    {
        let (token, text) = create(&mut client, token_type, projects, environment).await;
        assert!(text.starts_with(prefix), "{text} starts with {prefix}");
        assert!(token.id.starts_with("tok_"));
        assert_eq!(token.r#type(), token_type);

        let answer = client
            .validate_tokens(pb::ValidateTokensRequest {
                tokens: vec![text.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.tokens,
            [pb::ValidatedApiToken {
                token: text.clone(),
                r#type: token_type.into(),
                projects: answered_projects.iter().map(|p| p.to_string()).collect(),
                environment: answered_environment.into(),
            }]
        );

        let revoked = client
            .revoke_api_token(admin(pb::RevokeApiTokenRequest {
                id: token.id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(revoked.api_token.unwrap().id, token.id);
        assert!(valid(&mut client, &[&text]).await.is_empty(), "revoked");
        let again = client
            .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: token.id }))
            .await;
        assert_error(again, Code::NotFound, "API_TOKEN_NOT_FOUND");
    }
}

async fn mixed_batch_answers_valid_tokens_once_in_request_order(h: Harness) {
    let mut client = h.edge_tokens().await;
    let (_, first) = create(&mut client, pb::ApiTokenType::Backend, &["p"], "dev").await;
    let (_, second) = create(&mut client, pb::ApiTokenType::Frontend, &["p"], "dev").await;
    let (revoked, revoked_text) =
        create(&mut client, pb::ApiTokenType::Backend, &["p"], "dev").await;
    client
        .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: revoked.id }))
        .await
        .unwrap();
    let expiring = client
        .create_api_token(admin(pb::CreateApiTokenRequest {
            token_name: "short-lived".into(),
            r#type: pb::ApiTokenType::Backend.into(),
            projects: vec!["p".into()],
            environment: "dev".into(),
            expires_at: Some(timestamp_to_pb(h.clock.now().plus(Duration::from_secs(60)))),
        }))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert_eq!(
        valid(&mut client, &[&expiring]).await,
        std::slice::from_ref(&expiring)
    );
    h.clock.advance(Duration::from_secs(61));

    let secret = first.rsplit_once('.').unwrap().1;
    let other_project = format!("q:dev.{secret}");
    let other_environment = format!("p:prod.{secret}");
    let batch = [
        second.as_str(),
        "garbage",
        first.as_str(),
        second.as_str(),
        expiring.as_str(),
        revoked_text.as_str(),
        other_project.as_str(),
        other_environment.as_str(),
        "",
        "*:*.",
        first.as_str(),
    ];
    assert_eq!(valid(&mut client, &batch).await, [second, first]);
}

async fn expired_token_is_not_listed_nor_revocable(h: Harness) {
    let mut client = h.edge_tokens().await;
    let created = client
        .create_api_token(admin(pb::CreateApiTokenRequest {
            token_name: "short-lived".into(),
            r#type: pb::ApiTokenType::Frontend.into(),
            projects: vec!["p".into()],
            environment: "dev".into(),
            expires_at: Some(timestamp_to_pb(h.clock.now().plus(Duration::from_secs(5)))),
        }))
        .await
        .unwrap()
        .into_inner();
    let id = created.api_token.unwrap().id;
    h.clock.advance(Duration::from_secs(5));
    let listed = client
        .list_api_tokens(admin(pb::ListApiTokensRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.api_tokens.is_empty(), "{listed:?}");
    let result = client
        .revoke_api_token(admin(pb::RevokeApiTokenRequest { id }))
        .await;
    assert_error(result, Code::NotFound, "API_TOKEN_NOT_FOUND");
}

async fn empty_batch_gets_an_empty_answer(h: Harness) {
    let mut client = h.edge_tokens().await;
    assert!(valid(&mut client, &[]).await.is_empty());
}

async fn admin_calls_need_an_admin_key(h: Harness) {
    let mut client = h.edge_tokens().await;
    let result = client
        .create_api_token(pb::CreateApiTokenRequest {
            token_name: "ci".into(),
            r#type: pb::ApiTokenType::Admin.into(),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "ADMIN_KEY_MISSING");
    let result = client
        .list_api_tokens(crate::harness::with_bearer(
            pb::ListApiTokensRequest::default(),
            "not-the-admin-key-0123456789",
        ))
        .await;
    assert_error(result, Code::Unauthenticated, "ADMIN_KEY_INVALID");
    let result = client
        .revoke_api_token(pb::RevokeApiTokenRequest {
            id: format!("tok_{}", "0".repeat(32)),
        })
        .await;
    assert_error(result, Code::Unauthenticated, "ADMIN_KEY_MISSING");
}

async fn bad_requests_name_the_field_and_write_nothing(h: Harness) {
    let mut client = h.edge_tokens().await;
    let good = pb::CreateApiTokenRequest {
        token_name: "ci".into(),
        r#type: pb::ApiTokenType::Backend.into(),
        projects: vec!["p".into()],
        environment: "dev".into(),
        expires_at: None,
    };
    let cases = [
        (
            pb::CreateApiTokenRequest {
                token_name: String::new(),
                ..good.clone()
            },
            "token_name",
        ),
        (
            pb::CreateApiTokenRequest {
                r#type: 0,
                ..good.clone()
            },
            "type",
        ),
        (
            pb::CreateApiTokenRequest {
                r#type: 99,
                ..good.clone()
            },
            "type",
        ),
        (
            pb::CreateApiTokenRequest {
                projects: vec![],
                ..good.clone()
            },
            "projects",
        ),
        (
            pb::CreateApiTokenRequest {
                projects: vec!["p".into(), "no way".into()],
                ..good.clone()
            },
            "projects[1]",
        ),
        (
            pb::CreateApiTokenRequest {
                projects: vec!["*".into(), "p".into()],
                ..good.clone()
            },
            "projects",
        ),
        (
            pb::CreateApiTokenRequest {
                environment: String::new(),
                ..good.clone()
            },
            "environment",
        ),
        (
            pb::CreateApiTokenRequest {
                environment: "*".into(),
                ..good.clone()
            },
            "environment",
        ),
        (
            pb::CreateApiTokenRequest {
                environment: "a:b".into(),
                ..good.clone()
            },
            "environment",
        ),
        (
            pb::CreateApiTokenRequest {
                r#type: pb::ApiTokenType::Admin.into(),
                environment: "dev".into(),
                projects: vec![],
                ..good.clone()
            },
            "environment",
        ),
        (
            pb::CreateApiTokenRequest {
                expires_at: Some(timestamp_to_pb(h.clock.now())),
                ..good.clone()
            },
            "expires_at",
        ),
    ];
    for (request, field) in cases {
        assert_invalid(client.create_api_token(admin(request)).await, field);
    }
    let listed = client
        .list_api_tokens(admin(pb::ListApiTokensRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.api_tokens.is_empty(), "nothing was written");

    let list = |request: pb::ListApiTokensRequest| {
        let mut client = client.clone();
        async move { client.list_api_tokens(admin(request)).await }
    };
    let bad_lists = [
        (
            pb::ListApiTokensRequest {
                project: "a b".into(),
                ..Default::default()
            },
            "project",
        ),
        (
            pb::ListApiTokensRequest {
                environment: "*".into(),
                ..Default::default()
            },
            "environment",
        ),
        (
            pb::ListApiTokensRequest {
                r#type: 42,
                ..Default::default()
            },
            "type",
        ),
        (
            pb::ListApiTokensRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListApiTokensRequest {
                page_token: "%%".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ];
    for (request, field) in bad_lists {
        assert_invalid(list(request).await, field);
    }
    for id in ["", "tok_xyz", "sess_00000000000000000000000000000000"] {
        let result = client
            .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: id.into() }))
            .await;
        assert_invalid(result, "id");
    }
}

async fn list_filters_and_pages_without_secrets(h: Harness) {
    let mut client = h.edge_tokens().await;
    let (backend, backend_text) =
        create(&mut client, pb::ApiTokenType::Backend, &["a", "b"], "dev").await;
    h.clock.advance(Duration::from_millis(1));
    let (frontend, _) = create(&mut client, pb::ApiTokenType::Frontend, &["c"], "prod").await;
    h.clock.advance(Duration::from_millis(1));
    let (admin_token, _) = create(&mut client, pb::ApiTokenType::Admin, &[], "").await;

    let ids = |request: pb::ListApiTokensRequest| {
        let mut client = client.clone();
        async move {
            let answer = client
                .list_api_tokens(admin(request))
                .await
                .unwrap()
                .into_inner();
            let ids: Vec<String> = answer.api_tokens.into_iter().map(|t| t.id).collect();
            (ids, answer.next_page_token)
        }
    };
    let all = ids(pb::ListApiTokensRequest::default()).await;
    assert_eq!(all.0, [&*backend.id, &frontend.id, &admin_token.id]);
    assert_eq!(all.1, "");
    let by_type = ids(pb::ListApiTokensRequest {
        r#type: pb::ApiTokenType::Frontend.into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_type.0, [frontend.id.as_str()]);
    let by_project = ids(pb::ListApiTokensRequest {
        project: "b".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_project.0, [&*backend.id, &admin_token.id]);
    let by_environment = ids(pb::ListApiTokensRequest {
        environment: "prod".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_environment.0, [&*frontend.id, &admin_token.id]);

    // Pages of one, following the page token to the end.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = ids(pb::ListApiTokensRequest {
            page_size: 1,
            page_token,
            ..Default::default()
        })
        .await;
        seen.extend(page);
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    assert_eq!(seen, all.0);

    let listed = client
        .list_api_tokens(admin(pb::ListApiTokensRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let secret = backend_text.rsplit_once('.').unwrap().1;
    assert!(!format!("{listed:?}").contains(&secret[22..64]));
}

async fn oversized_batch_is_resource_exhausted(h: Harness) {
    let limit = Limits::default().max_request_bytes;
    let tokens = vec!["x".repeat(1000); limit / 1000 + 1];
    let result = h
        .edge_tokens()
        .await
        .validate_tokens(pb::ValidateTokensRequest { tokens })
        .await;
    assert_error(result, Code::ResourceExhausted, "REQUEST_TOO_LARGE");
}

async fn http_validate_answers_unleash_json(h: Harness) {
    let mut client = h.edge_tokens().await;
    let (_, legacy) = create(
        &mut client,
        pb::ApiTokenType::Client,
        &["default"],
        "development",
    )
    .await;
    let (_, several) = create(
        &mut client,
        pb::ApiTokenType::Backend,
        &["a", "b"],
        "production",
    )
    .await;
    let (_, frontend) = create(
        &mut client,
        pb::ApiTokenType::Frontend,
        &["*"],
        "development",
    )
    .await;
    let (_, admin_token) = create(&mut client, pb::ApiTokenType::Admin, &[], "").await;
    let body = json!({
        "tokens": [admin_token, "garbage", legacy, several, legacy, frontend, "*:development."],
        "ignored": true,
    });
    let answer = h
        .http(
            "POST",
            "/edge/validate",
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({"tokens": [
            {"token": admin_token, "type": "admin", "environment": "*", "projects": ["*"], "status": "Validated"},
            {"token": legacy, "type": "backend", "environment": "development", "projects": ["default"], "status": "Validated"},
            {"token": several, "type": "backend", "environment": "production", "projects": ["a", "b"], "status": "Validated"},
            {"token": frontend, "type": "frontend", "environment": "development", "projects": ["*"], "status": "Validated"},
        ]})
    );
    // Field order as Unleash Edge writes it.
    assert!(
        answer.body.starts_with(r#"{"tokens":[{"token":"*:*."#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(
            r#"","type":"admin","environment":"*","projects":["*"],"status":"Validated"}"#
        ),
        "{}",
        answer.body
    );

    for (content_type, path) in [
        ("application/json; charset=utf-8", "/edge/validate/"),
        ("application/vnd.unleash+json", "/edge/validate"),
    ] {
        let answer = h
            .http("POST", path, Some(content_type), br#"{"tokens": []}"#)
            .await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, r#"{"tokens":[]}"#)
        );
    }
}

async fn http_refuses_bad_requests_with_json_errors(h: Harness) {
    let refused = |answer: crate::harness::HttpAnswer, status: u16, reason: &str| {
        assert_eq!(answer.status, status, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        assert_eq!(body["reason"], reason, "{body}");
        body
    };
    let tokens = br#"{"tokens": []}"#;
    refused(
        h.http("POST", "/edge/validate", Some("text/plain"), tokens)
            .await,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    refused(
        h.http("POST", "/edge/validate", None, tokens).await,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let get = h.http("GET", "/edge/validate", None, b"").await;
    assert_eq!(get.header("allow"), Some("POST"));
    refused(get, 405, "METHOD_NOT_ALLOWED");

    for (body, field) in [
        (&b"{\"tokens\": [\"a\""[..], "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b"{}", "tokens"),
        (br#"{"tokens": {"a": 1}}"#, "tokens"),
        (br#"{"tokens": ["a", 2]}"#, "tokens[1]"),
    ] {
        let answer = h
            .http("POST", "/edge/validate", Some("application/json"), body)
            .await;
        let error = refused(answer, 400, "INVALID_FIELD");
        assert_eq!(error["field"], field, "{error}");
    }

    let limit = Limits::default().max_request_bytes;
    let tokens: Vec<String> = vec!["x".repeat(1000); limit / 1000 + 1];
    let body = json!({ "tokens": tokens }).to_string();
    let answer = h
        .http(
            "POST",
            "/edge/validate",
            Some("application/json"),
            body.as_bytes(),
        )
        .await;
    refused(answer, 413, "REQUEST_TOO_LARGE");
}

async fn python_client_gets_the_exact_json(h: Harness) {
    let mut client = h.edge_tokens().await;
    let (_, backend) = create(
        &mut client,
        pb::ApiTokenType::Backend,
        &["default"],
        "development",
    )
    .await;
    let (_, several) = create(
        &mut client,
        pb::ApiTokenType::Frontend,
        &["a", "b"],
        "production",
    )
    .await;
    let tokens = json!([several, "nonsense", backend, several]);
    let expected = json!({"tokens": [
        {"token": several, "type": "frontend", "environment": "production", "projects": ["a", "b"], "status": "Validated"},
        {"token": backend, "type": "backend", "environment": "development", "projects": ["default"], "status": "Validated"},
    ]});
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/edge_validate.py");
    let base_url = format!("http://{}", h.address);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(base_url)
            .arg(tokens.to_string())
            .arg(expected.to_string())
            .output()
    })
    .await
    .unwrap()
    .expect("python3 on PATH (the README's test command installs it)");
    assert!(
        output.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn http_only_listener_answers_edge_validate(h: Harness) {
    let mut client = h.edge_tokens().await;
    let (_, text) = create(
        &mut client,
        pb::ApiTokenType::Frontend,
        &["web"],
        "production",
    )
    .await;
    let body = json!({ "tokens": [text] }).to_string();
    let answer = crate::harness::http_to(
        h.http_address,
        "POST",
        "/edge/validate",
        Some("application/json"),
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"tokens": [{"token": text, "type": "frontend", "environment": "production", "projects": ["web"], "status": "Validated"}]})
    );
}

async fn http_chunked_body_over_the_limit_is_413(h: Harness) {
    // No content-length to refuse early: the limit must hold while reading.
    let limit = Limits::default().max_request_bytes;
    let address = h.address;
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(crate::harness::DEADLINE)).unwrap();
        let head = "POST /edge/validate HTTP/1.1\r\nhost: sigil\r\ncontent-type: application/json\r\n\
                    transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 1000, " ".repeat(1000));
        // Stop writing once the server has answered and closed.
        for _ in 0..=limit / 1000 {
            if stream.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        String::from_utf8(raw).unwrap()
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains(r#""reason":"REQUEST_TOO_LARGE""#), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_creates_and_validates_api_tokens() {
    let h = Harness::memory().await;
    let auth = format!("authorization: Bearer {}", crate::harness::ADMIN_KEY);
    let created = crate::reflection::run_grpcurl(
        &h,
        &[
            "-H",
            &auth,
            "-d",
            r#"{"token_name":"sdk","type":"API_TOKEN_TYPE_BACKEND","projects":["default"],"environment":"development"}"#,
        ],
        &["sigil.v1.EdgeTokenService/CreateApiToken"],
    );
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("default:development."), "{created}");
    let body = json!({ "tokens": [token, "nope"] }).to_string();
    let validated = crate::reflection::run_grpcurl(
        &h,
        &["-d", &body],
        &["sigil.v1.EdgeTokenService/ValidateTokens"],
    );
    let validated: serde_json::Value = serde_json::from_str(&validated).unwrap();
    assert_eq!(
        validated,
        json!({"tokens": [{"token": token, "type": "API_TOKEN_TYPE_BACKEND", "projects": ["default"], "environment": "development"}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_token_batch_is_one_redis_command() {
    let h = Harness::redis().await;
    let mut client = h.edge_tokens().await;
    let mut texts = Vec::new();
    for index in 0..1000 {
        let project = format!("project-{}", index % 7);
        let (_, text) = create(&mut client, pb::ApiTokenType::Backend, &[&project], "dev").await;
        texts.push(text);
    }
    let mut batch: Vec<&str> = texts.iter().map(String::as_str).collect();
    batch.extend(["garbage", "*:*.", "p:dev.00"]);
    let mut redis = h.redis.as_ref().unwrap().connection().await;

    let before = crate::storage::commands_run(&mut redis).await;
    let answered = valid(&mut client, &batch).await;
    assert_eq!(crate::storage::commands_run(&mut redis).await - before, 1);
    assert_eq!(answered, texts);

    // Malformed strings cost none.
    let before = crate::storage::commands_run(&mut redis).await;
    assert!(
        valid(&mut client, &["garbage", "*:*.", ""])
            .await
            .is_empty()
    );
    assert_eq!(crate::storage::commands_run(&mut redis).await - before, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_created_at_one_instance_validates_at_another_at_once() {
    let first = Harness::redis().await;
    let second = first.another_on_same_redis().await;
    let mut at_first = first.edge_tokens().await;
    let mut at_second = second.edge_tokens().await;

    let (token, text) = create(&mut at_first, pb::ApiTokenType::Backend, &["p"], "dev").await;
    assert_eq!(
        valid(&mut at_second, &[&text]).await,
        std::slice::from_ref(&text)
    );

    at_second
        .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: token.id }))
        .await
        .unwrap();
    assert!(valid(&mut at_first, &[&text]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_only_hashes_of_api_token_secrets() {
    let h = Harness::redis().await;
    let mut client = h.edge_tokens().await;
    let (token, text) = create(&mut client, pb::ApiTokenType::Backend, &["p"], "dev").await;
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let key = format!("sigil:{{{}}}:api_token", token.id);
    let stored: String = ::redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let secret = text.rsplit_once('.').unwrap().1;
    assert!(stored.contains(&token.id));
    assert!(
        !stored.contains(&secret[22..64]),
        "a secret is stored in the clear"
    );
    let members: Vec<String> = ::redis::cmd("ZRANGE")
        .arg("sigil:{api_tokens}:index")
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert!(members[0].ends_with(&token.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_is_unavailable_never_valid() {
    let mut h = Harness::redis().await;
    let mut client = h.edge_tokens().await;
    let (_, text) = create(&mut client, pb::ApiTokenType::Backend, &["p"], "dev").await;
    h.redis.as_mut().unwrap().stop();
    let result = client
        .validate_tokens(pb::ValidateTokensRequest {
            tokens: vec![text.clone()],
        })
        .await;
    assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
    let body = json!({ "tokens": [text] }).to_string();
    let answer = h
        .http(
            "POST",
            "/edge/validate",
            Some("application/json"),
            body.as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["reason"], "STORE_UNAVAILABLE");
    assert!(!answer.body.contains(&text), "no token in {}", answer.body);
}
