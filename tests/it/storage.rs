//! What the Redis store holds: hashes, never secrets; keys that expire with
//! their session; one round trip per WhoAmI and CheckAccess, two per
//! GetToken.

use redis::AsyncCommands;
use sigil_proto::v1 as pb;

use crate::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_no_usable_secret() {
    let h = Harness::redis().await;
    let (created, _) = h.active_session("frank", &["token:read"], vec![]).await;
    let pending = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let keys: Vec<String> = redis.keys("*").await.unwrap();
    assert!(!keys.is_empty());
    let mut dump = keys.join("\n");
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        match kind.as_str() {
            "hash" => {
                let fields: Vec<String> = redis.hgetall::<_, Vec<String>>(key).await.unwrap();
                dump.push_str(&fields.join("\n"));
            }
            "zset" => {
                let members: Vec<String> = redis.zrange(key, 0, -1).await.unwrap();
                dump.push_str(&members.join("\n"));
            }
            // The event feed: its counter and its entries.
            "string" => dump.push_str(&redis.get::<_, String>(key).await.unwrap()),
            "stream" => dump.push_str(&stream_entries(&mut redis, key).await),
            other => panic!("unexpected key type {other} for {key}"),
        }
    }
    for secret in [
        &created.session_key,
        &created.nonce,
        &pending.session_key,
        &pending.nonce,
    ] {
        // Neither the token nor its random part (past the embedded id).
        let encoded = secret
            .strip_prefix("sigil_sk_")
            .or_else(|| secret.strip_prefix("sigil_nonce_"))
            .unwrap();
        assert!(!dump.contains(encoded), "a secret is stored in the clear");
        assert!(
            !dump.contains(&encoded[22..40]),
            "part of a secret is stored in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expires_each_session_with_it() {
    let h = Harness::redis().await;
    let (created, session) = h.active_session("gina", &["token:read"], vec![]).await;
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let key = format!("sigil:{{{}}}:session", created.session_id);
    let expire_at_ms: i64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let expires_at = session.expires_at.unwrap();
    assert_eq!(
        expire_at_ms,
        expires_at.seconds * 1000 + i64::from(expires_at.nanos) / 1_000_000
    );

    let pending = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest {
            pending_ttl: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key = format!("sigil:{{{}}}:session", pending.session_id);
    let ttl_ms: i64 = redis.pttl(&key).await.unwrap();
    assert!((1..=30_000).contains(&ttl_ms), "pending TTL {ttl_ms}");
}

/// Commands Redis has run, except those health checks and this test make.
pub async fn commands_run(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_"))
        .filter(|line| !line.starts_with("cmdstat_ping:") && !line.starts_with("cmdstat_info:"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_and_check_access_cost_one_redis_command() {
    let h = Harness::redis().await;
    let (created, _) = h.active_session("hank", &["token:read"], vec![]).await;
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let mut validator = h.validator().await;

    let before = commands_run(&mut redis).await;
    validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(commands_run(&mut redis).await - before, 1);

    let before = commands_run(&mut redis).await;
    validator
        .check_access(pb::CheckAccessRequest {
            session_token: created.session_key,
            permission: "token:read".into(),
            resource: "tokens/1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(commands_run(&mut redis).await - before, 1);

    // A malformed token costs none.
    let before = commands_run(&mut redis).await;
    let refused = validator
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: "sigil_sk_forged".into(),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err());
    assert_eq!(commands_run(&mut redis).await - before, 0);
}

/// Every field and value of stream `key`, one per line.
async fn stream_entries(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await
        .unwrap();
    entries
        .into_iter()
        .flat_map(|(id, fields)| std::iter::once(id).chain(fields))
        .collect::<Vec<_>>()
        .join("\n")
}

/// GetToken reads the session and the template, and no signing key while
/// the issuer's last read of its active key is fresh (a few seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_token_costs_two_redis_commands_while_its_key_is_fresh() {
    let h = Harness::redis().await;
    let (key, _) = crate::jwt::alice(&h).await;
    crate::jwt::put(
        &h,
        crate::jwt::template("keys", pb::SigningAlgorithm::Eddsa),
    )
    .await;
    // The first mint makes the key and reads it.
    crate::jwt::token(&h, &key, "keys").await;
    let mut redis = h.redis.as_ref().unwrap().connection().await;
    let before = commands_run(&mut redis).await;
    for _ in 0..5 {
        crate::jwt::token(&h, &key, "keys").await;
    }
    assert_eq!(commands_run(&mut redis).await - before, 2 * 5);
}
