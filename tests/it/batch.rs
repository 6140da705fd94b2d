//! BatchWhoAmI and BatchVerifyTokens: one answer per entry in request order,
//! repeats answered alike, a maximum batch size, and one store round trip;
//! and the room every batch call of a process shares.

use std::time::Duration;

use sigil_proto::v1 as pb;
use sigil_runtime::Limits;
use sigil_store::RedisConfig;
use tonic::Code;

use crate::{
    harness::{
        EdgeTokenServiceClient, Harness, Role, Server, ValidatorServiceClient, admin, assert_error,
        channel_to, http_waiting, listener, redis_config,
    },
    jwt::{alice, put, template, token},
    metrics::{sample, scrape_at},
    storage::commands_run,
};

all_stores!(
    batch_who_am_i_answers_each_token_in_request_order,
    batch_verify_tokens_answers_each_jwt_in_request_order,
    batches_over_the_maximum_are_resource_exhausted,
    empty_batches_answer_nothing,
);

/// The session of a result, or the reason it was refused.
fn who(result: &pb::BatchWhoAmIResult) -> Result<String, (i32, String)> {
    match result.result.as_ref().expect("a result") {
        pb::batch_who_am_i_result::Result::Session(session) => Ok(session.id.clone()),
        pb::batch_who_am_i_result::Result::Error(error) => Err((error.code, error.reason.clone())),
    }
}

/// The session id of a verified token, or the reason it was refused.
fn verified(result: &pb::BatchVerifyTokensResult) -> Result<String, (i32, String)> {
    match result.result.as_ref().expect("a result") {
        pb::batch_verify_tokens_result::Result::Token(token) => Ok(token.session_id.clone()),
        pb::batch_verify_tokens_result::Result::Error(error) => {
            Err((error.code, error.reason.clone()))
        }
    }
}

fn refused(code: Code, reason: &str) -> Result<String, (i32, String)> {
    Err((i32::from(code), reason.to_owned()))
}

async fn revoke(h: &Harness, session_id: &str) {
    h.issuer()
        .await
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session_id.into(),
        }))
        .await
        .unwrap();
}

async fn batch_who_am_i_answers_each_token_in_request_order(h: Harness) {
    let (ann, _) = h.active_session("ann", &["a:read"], vec![]).await;
    let (bob, _) = h.active_session("bob", &["a:read"], vec![]).await;
    let (revoked, _) = h.active_session("cid", &["a:read"], vec![]).await;
    revoke(&h, &revoked.session_id).await;
    let pending = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let tokens = vec![
        ann.session_key.clone(),
        "not-a-token".to_owned(),
        bob.session_key.clone(),
        revoked.session_key.clone(),
        pending.session_key.clone(),
        String::new(),
        ann.session_key.clone(),
    ];
    let results = h
        .validator()
        .await
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let invalid = refused(Code::Unauthenticated, "SESSION_INVALID");
    let answers: Vec<_> = results.iter().map(who).collect();
    assert_eq!(
        answers,
        [
            Ok(ann.session_id.clone()),
            invalid.clone(),
            Ok(bob.session_id),
            invalid.clone(),
            invalid.clone(),
            invalid,
            Ok(ann.session_id),
        ]
    );
    // A repeat is the same answer, whole session included.
    assert_eq!(results[0], results[6]);
}

async fn batch_verify_tokens_answers_each_jwt_in_request_order(h: Harness) {
    put(&h, template("orders", pb::SigningAlgorithm::Eddsa)).await;
    let (alice_key, alice_session) = alice(&h).await;
    let (bob, _) = h.active_session("bob", &["orders:read"], vec![]).await;
    let alice_jwt = token(&h, &alice_key, "orders").await.jwt;
    let bob_jwt = token(&h, &bob.session_key, "orders").await.jwt;
    revoke(&h, &bob.session_id).await;
    let jwts = vec![
        alice_jwt.clone(),
        "not.a.jwt".to_owned(),
        bob_jwt,
        alice_jwt,
    ];
    let mut validator = h.validator().await;
    let answers = |check_session: bool, audience: &str| pb::BatchVerifyTokensRequest {
        jwts: jwts.clone(),
        audience: audience.into(),
        check_session,
    };
    let results = validator
        .batch_verify_tokens(answers(false, "shop.example"))
        .await
        .unwrap()
        .into_inner()
        .results;
    let malformed = refused(Code::Unauthenticated, "TOKEN_MALFORMED");
    assert_eq!(
        results.iter().map(verified).collect::<Vec<_>>(),
        [
            Ok(alice_session.id.clone()),
            malformed.clone(),
            Ok(bob.session_id.clone()),
            Ok(alice_session.id.clone()),
        ]
    );
    assert_eq!(results[0], results[3]);

    // With check_session, the revoked session's token is refused.
    let results = validator
        .batch_verify_tokens(answers(true, ""))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        results.iter().map(verified).collect::<Vec<_>>(),
        [
            Ok(alice_session.id.clone()),
            malformed.clone(),
            refused(Code::Unauthenticated, "TOKEN_SESSION_INACTIVE"),
            Ok(alice_session.id.clone()),
        ]
    );

    // The audience applies to every token.
    let results = validator
        .batch_verify_tokens(answers(false, "elsewhere"))
        .await
        .unwrap()
        .into_inner()
        .results;
    let wrong = refused(Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE");
    assert_eq!(
        results.iter().map(verified).collect::<Vec<_>>(),
        [wrong.clone(), malformed, wrong.clone(), wrong]
    );
}

async fn batches_over_the_maximum_are_resource_exhausted(h: Harness) {
    let (ann, _) = h.active_session("ann", &["a:read"], vec![]).await;
    let maximum = sigil_runtime::Limits::default().max_batch_size;
    let mut validator = h.validator().await;
    let full = vec![ann.session_key.clone(); maximum];
    let results = validator
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens: full,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), maximum);
    assert!(results.iter().all(|result| who(result).is_ok()));

    let over = vec![ann.session_key; maximum + 1];
    assert_error(
        validator
            .batch_who_am_i(pb::BatchWhoAmIRequest {
                tokens: over,
                ..Default::default()
            })
            .await,
        Code::ResourceExhausted,
        "BATCH_TOO_LARGE",
    );
    let over = vec!["x".to_owned(); maximum + 1];
    assert_error(
        validator
            .batch_verify_tokens(pb::BatchVerifyTokensRequest {
                jwts: over,
                ..Default::default()
            })
            .await,
        Code::ResourceExhausted,
        "BATCH_TOO_LARGE",
    );
}

async fn empty_batches_answer_nothing(h: Harness) {
    let mut validator = h.validator().await;
    let who = validator
        .batch_who_am_i(pb::BatchWhoAmIRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(who.results.is_empty());
    let verified = validator
        .batch_verify_tokens(pb::BatchVerifyTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.results.is_empty());
}

/// Calls of one Redis command so far.
pub(crate) async fn calls_of(
    redis: &mut ::redis::aio::MultiplexedConnection,
    command: &str,
) -> u64 {
    let info: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_who_am_i_reads_each_session_once_in_one_pipeline() {
    let h = Harness::redis().await;
    let mut keys = Vec::new();
    for subject in ["s1", "s2", "s3", "s4", "s5"] {
        keys.push(h.active_session(subject, &["a:read"], vec![]).await.0);
    }
    let mut tokens: Vec<String> = keys.iter().map(|key| key.session_key.clone()).collect();
    tokens.extend(keys.iter().map(|key| key.session_key.clone()));
    tokens.extend(["sigil_sk_forged".to_owned(), "garbage".to_owned()]);
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let mut validator = h.validator().await;

    let before = commands_run(&mut redis).await;
    let hgets = calls_of(&mut redis, "hget").await;
    let results = validator
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 12);
    // One HGET per distinct session, sent as one pipeline, and nothing else:
    // no command per repeat and none for the malformed tokens.
    assert_eq!(calls_of(&mut redis, "hget").await - hgets, 5);
    assert_eq!(commands_run(&mut redis).await - before, 5);

    // A batch of malformed tokens costs nothing.
    let before = commands_run(&mut redis).await;
    validator
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens: vec!["sigil_sk_forged".into(); 100],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(commands_run(&mut redis).await - before, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_verify_tokens_reads_sessions_only_when_asked() {
    let h = Harness::redis().await;
    put(&h, template("orders", pb::SigningAlgorithm::Eddsa)).await;
    let mut jwts = Vec::new();
    for subject in ["s1", "s2", "s3"] {
        let (created, _) = h.active_session(subject, &["a:read"], vec![]).await;
        let jwt = token(&h, &created.session_key, "orders").await.jwt;
        jwts.push(jwt.clone());
        jwts.push(jwt);
    }
    jwts.push("not.a.jwt".into());
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let mut validator = h.validator().await;
    let request = |check_session| pb::BatchVerifyTokensRequest {
        jwts: jwts.clone(),
        audience: String::new(),
        check_session,
    };
    // Warm the validator's key cache, which is filled from the issuer over
    // gRPC, not from Redis.
    validator.batch_verify_tokens(request(false)).await.unwrap();

    // The harness caches templates for no time at all, so the batch reads
    // its one template once (HGET on the template hash) and no session.
    let before = commands_run(&mut redis).await;
    validator.batch_verify_tokens(request(false)).await.unwrap();
    assert_eq!(commands_run(&mut redis).await - before, 1);

    // check_session adds one pipeline: one HGET per distinct session.
    let before = commands_run(&mut redis).await;
    let hgets = calls_of(&mut redis, "hget").await;
    let results = validator
        .batch_verify_tokens(request(true))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results[..6].iter().all(|result| verified(result).is_ok()));
    assert_eq!(calls_of(&mut redis, "hget").await - hgets, 1 + 3);
    assert_eq!(commands_run(&mut redis).await - before, 1 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_fails_the_whole_batch_never_one_entry() {
    let mut h = Harness::redis().await;
    put(&h, template("orders", pb::SigningAlgorithm::Eddsa)).await;
    let (alice_key, _) = alice(&h).await;
    let jwt = token(&h, &alice_key, "orders").await.jwt;
    let mut validator = h.validator().await;
    // Warm the key cache, so only the store is missing below.
    validator
        .batch_verify_tokens(pb::BatchVerifyTokensRequest {
            jwts: vec![jwt.clone()],
            ..Default::default()
        })
        .await
        .unwrap();

    h.redis.as_mut().unwrap().stop();

    let result = validator
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens: vec![alice_key, "garbage".into()],
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
    let result = validator
        .batch_verify_tokens(pb::BatchVerifyTokensRequest {
            jwts: vec![jwt, "not.a.jwt".into()],
            check_session: true,
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");
}

/// Every batch call (both validator batches, ValidateTokens and
/// `/edge/validate`) waits for room in the process's one bound on batch
/// entries, and is answered right once room frees. The room holds two
/// entries here; Redis is stalled under the batch inside it, so the rest
/// can be seen waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_beyond_the_room_wait_their_turn_then_answer() {
    const ROOM: usize = 2;
    // How long calls may wait for the stalled Redis: Sigil's deadlines and
    // the HTTP client's alike, far beyond what the test needs.
    const HELD_UP: Duration = Duration::from_secs(60);
    let h = Harness::redis_with(Limits {
        max_batch_entries_in_flight: ROOM,
        max_request_time: HELD_UP,
        ..Limits::default()
    })
    .await;
    put(&h, template("orders", pb::SigningAlgorithm::Eddsa)).await;
    let (alice_key, alice_session) = alice(&h).await;
    let (bob, _) = h.active_session("bob", &["orders:read"], vec![]).await;
    let jwt = token(&h, &alice_key, "orders").await.jwt;
    let (_, api_token) = crate::edge::create(
        &mut h.edge_tokens().await,
        pb::ApiTokenType::Backend,
        &["p"],
        "dev",
    )
    .await;
    // A server that waits for the stalled Redis as long as the test needs,
    // sharing the harness's room.
    let redis = h.redis.as_ref().expect("a Redis");
    let context = h.context_over(&RedisConfig {
        timeout: HELD_UP,
        ..redis_config(redis)
    });
    let server = Server::spawn(&context, Role::All, listener().await);
    let address = server.address;
    let channel = channel_to(address).await;

    redis.freeze();
    // Two batches of each kind, each as large as the room: one batch at a
    // time holds it, so at least two entries of every kind wait.
    let mut who_am_i = Vec::new();
    let mut verify = Vec::new();
    let mut validate = Vec::new();
    let mut edge_validate = Vec::new();
    for _ in 0..2 {
        let mut validator = ValidatorServiceClient::new(channel.clone());
        let tokens = vec![alice_key.clone(), bob.session_key.clone()];
        who_am_i.push(tokio::spawn(async move {
            let request = pb::BatchWhoAmIRequest {
                tokens,
                ..Default::default()
            };
            let answer = validator.batch_who_am_i(request).await.expect("answered");
            answer
                .into_inner()
                .results
                .iter()
                .map(who)
                .collect::<Vec<_>>()
        }));
        let mut validator = ValidatorServiceClient::new(channel.clone());
        let jwts = vec![jwt.clone(), jwt.clone()];
        verify.push(tokio::spawn(async move {
            let request = pb::BatchVerifyTokensRequest {
                jwts,
                check_session: true,
                ..Default::default()
            };
            let answer = validator
                .batch_verify_tokens(request)
                .await
                .expect("answered");
            answer
                .into_inner()
                .results
                .iter()
                .map(verified)
                .collect::<Vec<_>>()
        }));
        let mut edge_tokens = EdgeTokenServiceClient::new(channel.clone());
        let tokens = vec![api_token.clone(), "garbage".to_owned()];
        validate.push(tokio::spawn(async move {
            let request = pb::ValidateTokensRequest { tokens };
            let answer = edge_tokens
                .validate_tokens(request)
                .await
                .expect("answered");
            let tokens = answer.into_inner().tokens;
            tokens
                .into_iter()
                .map(|token| token.token)
                .collect::<Vec<_>>()
        }));
        let body = serde_json::json!({ "tokens": [api_token, "garbage"] }).to_string();
        edge_validate.push(tokio::spawn(async move {
            let answer = http_waiting(
                address,
                "POST",
                "/edge/validate",
                Some("application/json"),
                body.as_bytes(),
                HELD_UP,
            )
            .await;
            answer.json()["tokens"]
                .as_array()
                .expect("a list of tokens")
                .iter()
                .map(|token| token["token"].as_str().expect("a token").to_owned())
                .collect::<Vec<_>>()
        }));
    }
    let methods = [
        "BatchWhoAmI",
        "BatchVerifyTokens",
        "ValidateTokens",
        "EdgeValidate",
    ];
    // Longer than `eventually`'s deadline: on a busy CI machine the calls
    // and the scrapes (a Python process each) have taken over 10 s.
    let started = std::time::Instant::now();
    let all_waiting = || {
        let metrics = scrape_at(address);
        methods.iter().all(|&method| {
            sample(
                &metrics,
                "sigil_batch_entries_waiting",
                &[("method", method)],
            ) >= ROOM as f64
        })
    };
    while !all_waiting() {
        assert!(
            started.elapsed() < HELD_UP / 2,
            "entries of every kind waiting for room"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    redis.thaw();
    for answer in who_am_i {
        let sessions = answer.await.expect("BatchWhoAmI");
        assert_eq!(
            sessions,
            [Ok(alice_session.id.clone()), Ok(bob.session_id.clone())]
        );
    }
    for answer in verify {
        let sessions = answer.await.expect("BatchVerifyTokens");
        assert_eq!(
            sessions,
            [Ok(alice_session.id.clone()), Ok(alice_session.id.clone())]
        );
    }
    for answer in validate.into_iter().chain(edge_validate) {
        assert_eq!(
            answer.await.expect("a token validation"),
            [api_token.as_str()]
        );
    }
    let metrics = scrape_at(address);
    for method in methods {
        assert_eq!(
            sample(
                &metrics,
                "sigil_batch_entries_waiting",
                &[("method", method)]
            ),
            0.0,
            "{method}"
        );
    }
}
