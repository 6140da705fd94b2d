//! No secret anywhere it should not be: after a full run of every service
//! over Redis, the Redis keys and values, every log line at the most verbose
//! level and every exported span hold no session key, nonce, API token,
//! HS256 shared secret, admin key or master key.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;
#[path = "../otel/receiver.rs"]
mod receiver;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use redis::AsyncCommands;
use sigil_proto::v1 as pb;
use sigil_runtime::{LogArgs, LogFormat, OtlpSettings, init_telemetry_with_writer};
use tokio_stream::wrappers::TcpListenerStream;

use harness::{ADMIN_KEY, Harness, MASTER_KEY, admin, eventually, http_to, listener, with_bearer};
use receiver::Receiver;

/// Every log line, kept in memory.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every key and value in Redis, as text.
async fn redis_dump(h: &Harness) -> String {
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let keys: Vec<String> = redis.keys("*").await.unwrap();
    let mut dump = keys.join("\n");
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![redis.get(key).await.unwrap()],
            "hash" => redis.hgetall(key).await.unwrap(),
            "zset" => redis.zrange(key, 0, -1).await.unwrap(),
            "set" => redis.smembers(key).await.unwrap(),
            "list" => redis.lrange(key, 0, -1).await.unwrap(),
            // The event feed: ids and every field of every entry.
            "stream" => {
                let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                    .arg(key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                entries
                    .into_iter()
                    .flat_map(|(id, fields)| std::iter::once(id).chain(fields))
                    .collect()
            }
            other => panic!("unexpected key type {other} for {key}"),
        };
        dump.push('\n');
        dump.push_str(&values.join("\n"));
    }
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_redis_logs_or_spans_after_a_full_run() {
    let receiver = Receiver::default();
    let collector = listener().await;
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(collector)),
    );
    let lines = Lines::default();
    let telemetry = init_telemetry_with_writer(
        &LogArgs {
            log_format: LogFormat::Json,
            log_filter: "trace".into(),
        },
        Some(OtlpSettings {
            endpoint,
            service_name: "sigil-secrets-test".into(),
        }),
        lines.clone(),
    )
    .unwrap();

    let h = Harness::redis().await;
    let mut issuer = h.issuer().await;
    let mut validator = h.validator().await;
    let mut edge = h.edge_tokens().await;

    // Sessions: create, authorize, check, extend, revoke.
    let created = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "olga".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce.clone(),
            permissions: vec!["token:read".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    validator
        .who_am_i(with_bearer(
            pb::WhoAmIRequest::default(),
            &created.session_key,
        ))
        .await
        .unwrap();
    validator
        .check_access(pb::CheckAccessRequest {
            session_token: created.session_key.clone(),
            permission: "token:read".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A refused key is logged as a refusal, not as the key.
    let wrong = format!("{}x", created.session_key);
    assert!(
        validator
            .who_am_i(with_bearer(pb::WhoAmIRequest::default(), &wrong))
            .await
            .is_err()
    );

    // JWTs: an HS256 template (its shared secret), a token, a one-time check.
    let put = issuer
        .put_token_template(admin(pb::PutTokenTemplateRequest {
            template: Some(pb::TokenTemplate {
                name: "shop".into(),
                algorithm: pb::SigningAlgorithm::Hs256.into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    let jwt = issuer
        .get_token(pb::GetTokenRequest {
            session_token: created.session_key.clone(),
            template: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jwt;
    validator
        .verify_token(pb::VerifyTokenRequest {
            jwt,
            consume_jti: true,
            check_session: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // API tokens: create, validate over gRPC and HTTP.
    let api_token = edge
        .create_api_token(admin(pb::CreateApiTokenRequest {
            token_name: "ci".into(),
            r#type: pb::ApiTokenType::Backend.into(),
            projects: vec!["shop".into()],
            environment: "production".into(),
            expires_at: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .token;
    let answered = edge
        .validate_tokens(pb::ValidateTokensRequest {
            tokens: vec![api_token.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.tokens.len(), 1);
    let body = serde_json::json!({ "tokens": [api_token] }).to_string();
    // The HTTP-only listener, as `sigil-edge-token --http-listen` serves it.
    let http = http_to(
        h.http_address,
        "POST",
        "/edge/validate",
        Some("application/json"),
        body.as_bytes(),
    )
    .await;
    assert_eq!(http.status, 200);

    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        }))
        .await
        .unwrap();

    eventually("spans of the run at the collector", || {
        telemetry.flush();
        let receiver = receiver.clone();
        async move { receiver.0.lock().unwrap().len() >= 10 }
    })
    .await;
    let spans = format!("{:?}", receiver.0.lock().unwrap());
    let logs = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let redis = redis_dump(&h).await;
    assert!(logs.lines().count() > 20, "the trace level logged the run");
    // Log lines inside a call carry its trace id, to find them from a trace.
    assert!(
        logs.lines()
            .any(|line| line.contains("session created") && line.contains("\"trace_id\":\"")),
        "no trace id on the log line of a call"
    );

    let secrets = [
        ("session key", created.session_key.as_str()),
        ("nonce", created.nonce.as_str()),
        ("API token", api_token.as_str()),
        ("HS256 shared secret", put.shared_secret.as_str()),
        ("admin key", ADMIN_KEY),
        ("master key", MASTER_KEY),
    ];
    for (what, secret) in secrets {
        assert!(secret.len() >= 20, "{what} is a real secret");
        // The whole secret, and a stretch of its random tail (a prefix or
        // an embedded id is no secret).
        let tail = &secret[secret.len() - 20..];
        for (place, haystack) in [("Redis", &redis), ("logs", &logs), ("spans", &spans)] {
            assert!(!haystack.contains(secret), "the {what} is in the {place}");
            assert!(
                !haystack.contains(tail),
                "part of the {what} is in the {place}"
            );
        }
    }
}
