//! The validator's session near-cache: reads answered without a store round
//! trip, a revocation on the issuer seen at once by every caching validator,
//! expiry exact, and the whole cache dropped whenever its invalidations
//! fail. Each scenario runs with both sources of invalidations: the event
//! feed (in memory and on Redis) and Redis key tracking.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sigil_proto::v1 as pb;
use sigil_store::InvalidationSource;
use tokio::task::JoinSet;
use tonic::{Code, transport::Channel};

use crate::{
    batch::calls_of,
    harness::{
        Harness, Role, Server, ValidatorServiceClient, admin, assert_error, channel_to, eventually,
        redis_config,
    },
    metrics::{sample, scrape},
};

/// Stamps each scenario `async fn name(h: Harness, invalidation)` as a
/// test of the event feed on Redis (`redis`), of Redis key tracking
/// (`key_tracking`), and, for those listed under `memory_too`, of the
/// event feed in memory (`memory`).
macro_rules! every_invalidation {
    (memory_too: [$($shared:ident),* $(,)?], redis_only: [$($redis:ident),* $(,)?] $(,)?) => {
        every_invalidation!(@stamp memory, memory, EventFeed, $($shared),*);
        every_invalidation!(@stamp redis, redis, EventFeed, $($shared,)* $($redis),*);
        every_invalidation!(@stamp key_tracking, redis, KeyTracking, $($shared,)* $($redis),*);
    };
    (@stamp $module:ident, $store:ident, $source:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(
                        crate::harness::Harness::$store().await,
                        sigil_store::InvalidationSource::$source,
                    )
                    .await;
                }
            )*
        }
    };
}

every_invalidation!(
    memory_too: [
        a_revocation_reaches_every_caching_validator,
        authorizing_and_extending_reach_the_cache_too,
        a_cached_session_is_never_served_past_its_expiry,
    ],
    redis_only: [
        redis_going_away_drops_the_cache_and_answers_stay_correct,
        a_reset_store_drops_the_cache,
        revocation_window_under_load,
    ],
);

/// A validator with the near-cache on, over its own connection to the
/// harness's store (the same store, for the in-memory one).
pub(crate) fn caching_validator(h: &Harness, invalidation: InvalidationSource) -> Server {
    let context = match &h.redis {
        Some(redis) => h.context_over(&redis_config(redis)),
        None => h.context.clone(),
    };
    Server::spawn(
        &context,
        Role::CachingValidator {
            issuer: h.address,
            invalidation,
        },
        listener_now(),
    )
}

/// A bound listener, without awaiting (binding a loopback port is instant).
fn listener_now() -> tokio::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    tokio::net::TcpListener::from_std(listener).expect("tokio listener")
}

async fn client(server: &Server) -> ValidatorServiceClient<Channel> {
    ValidatorServiceClient::new(channel_to(server.address).await)
}

async fn who_am_i(
    validator: &mut ValidatorServiceClient<Channel>,
    key: &str,
) -> Result<tonic::Response<pb::WhoAmIResponse>, tonic::Status> {
    validator
        .who_am_i(pb::WhoAmIRequest {
            session_token: key.to_owned(),
            ..Default::default()
        })
        .await
}

/// Waits until `validator` refuses `key` as UNAUTHENTICATED.
async fn until_refused(validator: &ValidatorServiceClient<Channel>, key: &str) {
    eventually("the validator refuses the session", || {
        let mut validator = validator.clone();
        async move {
            matches!(who_am_i(&mut validator, key).await,
                Err(status) if status.code() == Code::Unauthenticated)
        }
    })
    .await;
}

/// Waits until `validator` answers `key` as a valid session.
async fn until_valid(validator: &ValidatorServiceClient<Channel>, key: &str) {
    eventually("the validator answers the session as valid", || {
        let mut validator = validator.clone();
        async move { who_am_i(&mut validator, key).await.is_ok() }
    })
    .await;
}

/// Waits until every one of `validators` answers `key` from its cache:
/// on Redis, proven by answers that cost no store read; in memory, where
/// reads cannot be counted, until each answers at all.
async fn until_cached(h: &Harness, validators: &[ValidatorServiceClient<Channel>], key: &str) {
    let Some(redis) = &h.redis else {
        for validator in validators {
            until_valid(validator, key).await;
        }
        return;
    };
    let connection = redis.connection().await;
    eventually("answers come from the cache", || {
        let mut validators = validators.to_vec();
        let mut connection = connection.clone();
        async move {
            let before = calls_of(&mut connection, "hget").await;
            for validator in &mut validators {
                who_am_i(validator, key).await.expect("valid");
            }
            calls_of(&mut connection, "hget").await == before
        }
    })
    .await;
    let mut connection = connection.clone();
    let before = calls_of(&mut connection, "hget").await;
    for validator in validators {
        for _ in 0..10 {
            who_am_i(&mut validator.clone(), key)
                .await
                .expect("valid from the cache");
        }
    }
    assert_eq!(calls_of(&mut connection, "hget").await, before);
}

async fn a_revocation_reaches_every_caching_validator(
    h: Harness,
    invalidation: InvalidationSource,
) {
    let (created, session) = h.active_session("alice", &["read"], vec![]).await;
    let key = created.session_key.as_str();
    let first = caching_validator(&h, invalidation);
    let second = caching_validator(&h, invalidation);
    let mut validators = [client(&first).await, client(&second).await];
    let hits = [("cache", "session"), ("result", "hit")];
    let before = sample(&scrape(&h), "sigil_cache_requests_total", &hits);
    until_cached(&h, &validators, key).await;
    // On Redis, where `until_cached` proves twenty answers came from the
    // caches, they are counted as hits (one recorder for the process).
    let after = sample(&scrape(&h), "sigil_cache_requests_total", &hits);
    if h.redis.is_some() {
        assert!(after >= before + 20.0, "{before} → {after}");
    }
    h.issuer()
        .await
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session.id.clone(),
        }))
        .await
        .expect("revoked");
    for validator in &mut validators {
        until_refused(validator, key).await;
        // Once refused, refused for good.
        for _ in 0..20 {
            assert_error(
                who_am_i(validator, key).await,
                Code::Unauthenticated,
                "SESSION_INVALID",
            );
        }
    }
}

async fn authorizing_and_extending_reach_the_cache_too(
    h: Harness,
    invalidation: InvalidationSource,
) {
    let created = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest {
            subject: "bob".into(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    let server = caching_validator(&h, invalidation);
    let mut validator = client(&server).await;
    // Pending: refused, and the pending record is what the cache may hold.
    for _ in 0..3 {
        assert_error(
            who_am_i(&mut validator, &created.session_key).await,
            Code::Unauthenticated,
            "SESSION_INVALID",
        );
    }
    let mut issuer = h.issuer().await;
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce.clone(),
            permissions: vec!["read".into()],
            ..Default::default()
        }))
        .await
        .expect("authorized");
    until_valid(&validator, &created.session_key).await;
    let before = who_am_i(&mut validator, &created.session_key)
        .await
        .expect("valid")
        .into_inner()
        .session
        .expect("session")
        .expires_at;
    let extended = issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: created.session_id.clone(),
            lifespan: Some(prost_types::Duration {
                seconds: 30 * 24 * 3600,
                nanos: 0,
            }),
        }))
        .await
        .expect("extended")
        .into_inner();
    assert!(extended.extended);
    let after = extended.session.expect("session").expires_at;
    assert_ne!(before, after);
    eventually("the extension reaches the cache", || {
        let mut validator = validator.clone();
        let key = created.session_key.clone();
        async move {
            who_am_i(&mut validator, &key)
                .await
                .is_ok_and(|who| who.into_inner().session.expect("session").expires_at == after)
        }
    })
    .await;
}

async fn a_cached_session_is_never_served_past_its_expiry(
    h: Harness,
    invalidation: InvalidationSource,
) {
    let (created, session) = h.active_session("carol", &["read"], vec![]).await;
    let server = caching_validator(&h, invalidation);
    let mut validator = client(&server).await;
    until_cached(&h, std::slice::from_ref(&validator), &created.session_key).await;
    let expires_at = session.expires_at.expect("expires_at");
    let now = sigil_domain::Clock::now(&*h.clock).unix_ms();
    let left = expires_at.seconds * 1000 + i64::from(expires_at.nanos / 1_000_000) - now;
    h.clock.advance(Duration::from_millis(
        u64::try_from(left).expect("in the future"),
    ));
    // No event says so: the cached record's own expiry does, at once.
    assert_error(
        who_am_i(&mut validator, &created.session_key).await,
        Code::Unauthenticated,
        "SESSION_INVALID",
    );
}

async fn redis_going_away_drops_the_cache_and_answers_stay_correct(
    mut h: Harness,
    invalidation: InvalidationSource,
) {
    let (created, _) = h.active_session("dave", &["read"], vec![]).await;
    let key = created.session_key.clone();
    let server = caching_validator(&h, invalidation);
    let mut validator = client(&server).await;
    until_valid(&validator, &key).await;
    // Redis dies: once the feed notices, nothing is answered from memory.
    h.redis.as_mut().expect("redis").stop();
    eventually("the validator stops answering from the cache", || {
        let mut validator = validator.clone();
        let key = key.clone();
        async move {
            matches!(who_am_i(&mut validator, &key).await,
                Err(status) if status.code() == Code::Unavailable)
        }
    })
    .await;
    // Back, empty: the session is gone, and no stale copy says otherwise.
    h.redis.as_mut().expect("redis").restart().await;
    until_refused(&validator, &key).await;
    for _ in 0..20 {
        assert_error(
            who_am_i(&mut validator, &key).await,
            Code::Unauthenticated,
            "SESSION_INVALID",
        );
    }
}

async fn a_reset_store_drops_the_cache(h: Harness, invalidation: InvalidationSource) {
    let (created, _) = h.active_session("erin", &["read"], vec![]).await;
    let key = created.session_key.clone();
    let server = caching_validator(&h, invalidation);
    let mut validator = client(&server).await;
    until_valid(&validator, &key).await;
    // Everything deleted, the feed's stream and counter with it: no event
    // will ever say the session went, so the feed must notice the reset.
    let mut connection = h.redis.as_ref().expect("redis").connection().await;
    let _: () = ::redis::cmd("FLUSHALL")
        .query_async(&mut connection)
        .await
        .expect("flushed");
    until_refused(&validator, &key).await;
    for _ in 0..20 {
        assert_error(
            who_am_i(&mut validator, &key).await,
            Code::Unauthenticated,
            "SESSION_INVALID",
        );
    }
}

/// Measures, under load, how long a revoked session is still answered as
/// valid by a caching validator after RevokeSession returned on the issuer:
/// the revocation window the docs state. Asserts only that every session
/// ends refused; prints the figures.
async fn revocation_window_under_load(h: Harness, invalidation: InvalidationSource) {
    let server = caching_validator(&h, invalidation);
    let validator = client(&server).await;
    let mut sessions = Vec::new();
    for index in 0..30 {
        let (created, session) = h
            .active_session(&format!("user{index}"), &["read"], vec![])
            .await;
        sessions.push((created.session_key, session.id));
    }
    let mut issuer = h.issuer().await;
    let mut windows = Vec::new();
    for (key, id) in &sessions {
        until_valid(&validator, key).await;
        // Load: readers hammering this very session while it is revoked.
        let revoked = Arc::new(AtomicBool::new(false));
        let mut readers = JoinSet::new();
        for _ in 0..4 {
            let mut validator = validator.clone();
            let key = key.clone();
            let revoked = revoked.clone();
            readers.spawn(async move {
                let mut last_valid_after_revoke = None;
                let mut refused_in_a_row = 0;
                while refused_in_a_row < 5 {
                    let asked = Instant::now();
                    let valid = who_am_i(&mut validator, &key).await.is_ok();
                    if valid {
                        refused_in_a_row = 0;
                        if revoked.load(Ordering::SeqCst) {
                            last_valid_after_revoke = Some(asked);
                        }
                    } else {
                        refused_in_a_row += 1;
                    }
                }
                last_valid_after_revoke
            });
        }
        issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: id.clone(),
            }))
            .await
            .expect("revoked");
        let returned = Instant::now();
        revoked.store(true, Ordering::SeqCst);
        let mut window = Duration::ZERO;
        while let Some(last_valid) = readers.join_next().await {
            if let Some(last_valid) = last_valid.expect("reader") {
                window = window.max(last_valid.saturating_duration_since(returned));
            }
        }
        until_refused(&validator, key).await;
        windows.push(window);
    }
    windows.sort();
    let at = |quantile: f64| windows[((windows.len() - 1) as f64 * quantile) as usize];
    eprintln!(
        "revocation window ({invalidation:?}) over {} revocations: p50 {:?}, p99 {:?}, max {:?}",
        windows.len(),
        at(0.5),
        at(0.99),
        windows.last().expect("windows")
    );
}
