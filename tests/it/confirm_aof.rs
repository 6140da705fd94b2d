//! `SIGIL_REDIS_CONFIRM_AOF`: revocations, used nonces and `jti`s, and API
//! token revocations acknowledged only once the primary has fsynced them
//! (`WAITAOF 1 0`). Debian 12's Redis 7.0 has no WAITAOF, so these tests run
//! a Valkey (answering as Redis 7.2) from the venv, and check that Sigil
//! refuses to start where WAITAOF cannot work.

use std::time::Duration;

use clap::Parser;
use sigil_proto::v1 as pb;
use sigil_runtime::{CommonArgs, Context, Limits};
use sigil_store::RedisConfig;
use tonic::Code;

use crate::{
    edge,
    harness::{
        EdgeTokenServiceClient, Harness, IssuerServiceClient, RedisServer, Role, Server,
        ValidatorServiceClient, admin, channel_to, listener, redis_config,
    },
    jwt,
};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    common: CommonArgs,
}

/// A service's startup over `redis` with `SIGIL_REDIS_CONFIRM_AOF=true`.
async fn start_confirming_aof(url: &str) -> Result<Context, String> {
    let flags = Flags::try_parse_from(["sigil-test", "--redis-url", url, "--redis-confirm-aof"])
        .expect("flags parse");
    Context::connect(&flags.common).await
}

/// A revocation, a used `jti` and an API token revocation through
/// `server`: what each answered.
async fn confirmed_writes(h: &Harness, server: &Server) -> Vec<Result<(), Code>> {
    let mut issuer = IssuerServiceClient::new(channel_to(server.address).await);
    let mut validator = ValidatorServiceClient::new(channel_to(server.address).await);
    let mut edge_tokens = EdgeTokenServiceClient::new(channel_to(server.address).await);
    let (session_key, session) = jwt::alice(h).await;
    let minted = jwt::token(h, &session_key, "once").await.jwt;
    let (api_token, _) =
        edge::create(&mut edge_tokens, pb::ApiTokenType::Backend, &["p"], "dev").await;
    let code = |status: tonic::Status| status.code();
    vec![
        issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: session.id,
            }))
            .await
            .map(drop)
            .map_err(code),
        validator
            .verify_token(pb::VerifyTokenRequest {
                jwt: minted,
                consume_jti: true,
                ..Default::default()
            })
            .await
            .map(drop)
            .map_err(code),
        edge_tokens
            .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: api_token.id }))
            .await
            .map(drop)
            .map_err(code),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_writes_wait_for_the_primarys_fsync() {
    for fsync in ["always", "everysec"] {
        let redis =
            RedisServer::start_valkey(&["--appendonly", "yes", "--appendfsync", fsync]).await;
        start_confirming_aof(&redis.url())
            .await
            .expect("WAITAOF with appendonly yes starts");
        let h = Harness::over_redis(redis, Limits::default()).await;
        jwt::put(&h, jwt::template("once", pb::SigningAlgorithm::Hs256)).await;
        let redis = h.redis.as_ref().expect("redis");
        let context = h.context_over(&RedisConfig {
            confirm_aof: true,
            // everysec fsyncs within a second; the margin is for a loaded
            // test machine.
            confirm_timeout: Duration::from_secs(3),
            ..redis_config(redis)
        });
        let server = Server::spawn(&context, Role::All, listener().await);
        assert_eq!(
            confirmed_writes(&h, &server).await,
            [Ok(()), Ok(()), Ok(())],
            "appendfsync {fsync}"
        );

        // The append-only file turned off under a running Sigil: WAITAOF
        // cannot be satisfied, so nothing is acknowledged, and each write
        // stands on the primary all the same.
        let mut connection = redis.connection().await;
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("no")
            .query_async(&mut connection)
            .await
            .expect("CONFIG SET");
        assert_eq!(
            confirmed_writes(&h, &server).await,
            [Err(Code::Unavailable); 3],
            "appendfsync {fsync}, then appendonly no"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_the_aof_stops_startup_where_waitaof_cannot_work() {
    // Redis 7.0 (Debian 12's) has no WAITAOF.
    let old = RedisServer::start().await;
    let error = start_confirming_aof(&old.url())
        .await
        .err()
        .expect("no WAITAOF stops startup");
    assert!(error.starts_with("SIGIL_REDIS_CONFIRM_AOF: "), "{error}");
    assert!(error.contains("Redis 7.2"), "{error}");

    // A Redis with WAITAOF but without the append-only file.
    let no_aof = RedisServer::start_valkey(&["--appendonly", "no"]).await;
    let error = start_confirming_aof(&no_aof.url())
        .await
        .err()
        .expect("appendonly no stops startup");
    assert!(error.starts_with("SIGIL_REDIS_CONFIRM_AOF: "), "{error}");
    assert!(error.contains("appendonly"), "{error}");

    // A Redis that is down is waited for, as without the setting.
    let url = no_aof.url();
    drop(no_aof);
    start_confirming_aof(&url)
        .await
        .expect("a Redis that is down is waited for");
}
