//! What holds on a Redis Cluster beyond the scenario suite (which runs on
//! one through `all_stores!`): batches spread over every node, the event
//! feed's documented guarantee, the near-cache's refusal, replica
//! confirmation on the key's own node, and a failover under a stream of
//! calls.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sigil_proto::v1 as pb;
use sigil_runtime::Services;
use sigil_validator::KeySettings;
use tonic::Code;

use crate::harness::{
    DEADLINE, Harness, RedisCluster, Role, Server, ValidatorServiceClient, admin, channel_to,
    cluster_config, eventually,
};

fn session_key(session_id: &str) -> String {
    format!("sigil:{{{session_id}}}:session")
}

/// The subject index that lists `session_id`, found on whichever node
/// holds it.
async fn index_key_of(cluster: &RedisCluster, session_id: &str) -> String {
    for port in cluster.ports() {
        let mut node = cluster.node(port).await;
        let indexes: Vec<String> = redis::cmd("KEYS")
            .arg("sigil:{subj_*}:sessions")
            .query_async(&mut node)
            .await
            .expect("KEYS");
        for index in indexes {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .query_async(&mut node)
                .await
                .expect("ZRANGE");
            if members.iter().any(|member| member.ends_with(session_id)) {
                return index;
            }
        }
    }
    panic!("no index lists {session_id}")
}

async fn revoke(h: &Harness, session_id: &str) -> Result<(), tonic::Status> {
    h.issuer()
        .await
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session_id.into(),
        }))
        .await
        .map(drop)
}

/// The id of the session `key` belongs to, or the refusal's code.
pub(crate) async fn who_am_i(
    validator: &mut ValidatorServiceClient<tonic::transport::Channel>,
    key: &str,
) -> Result<String, Code> {
    validator
        .who_am_i(pb::WhoAmIRequest {
            session_token: key.into(),
            ..Default::default()
        })
        .await
        .map(|answer| answer.into_inner().session.expect("a session").id)
        .map_err(|status| status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_every_node_answers_in_request_order() {
    let h = Harness::redis_cluster().await;
    let cluster = h.cluster.as_ref().expect("a cluster");
    let mut sessions = Vec::new();
    let mut owners = std::collections::BTreeSet::new();
    // Random ids spread over the slots: enough of them land on every node.
    while owners.len() < 3 {
        assert!(sessions.len() < 60, "60 sessions all missed a node");
        let (created, _) = h.active_session("ann", &["a:read"], vec![]).await;
        owners.insert(cluster.owner_of(&session_key(&created.session_id)).await);
        sessions.push(created);
    }
    let revoked = &sessions[1];
    revoke(&h, &revoked.session_id).await.expect("revoked");
    // Backwards, with a repeat: the answers must follow this order.
    let mut tokens: Vec<String> = sessions
        .iter()
        .rev()
        .map(|created| created.session_key.clone())
        .collect();
    tokens.push(sessions[0].session_key.clone());
    let results = h
        .validator()
        .await
        .batch_who_am_i(pb::BatchWhoAmIRequest {
            tokens: tokens.clone(),
            ..Default::default()
        })
        .await
        .expect("answered")
        .into_inner()
        .results;
    assert_eq!(results.len(), tokens.len());
    for (token, result) in tokens.iter().zip(&results) {
        let created = sessions
            .iter()
            .find(|created| &created.session_key == token)
            .expect("one of ours");
        match result.result.as_ref().expect("a result") {
            pb::batch_who_am_i_result::Result::Session(session) => {
                assert_ne!(created.session_id, revoked.session_id, "a revoked session");
                assert_eq!(session.id, created.session_id, "out of order");
            }
            pb::batch_who_am_i_result::Result::Error(error) => {
                assert_eq!(created.session_id, revoked.session_id, "{error:?}");
                assert_eq!(error.code, i32::from(Code::Unauthenticated));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stands_when_its_event_cannot_be_appended() {
    let h = Harness::redis_cluster().await;
    let cluster = h.cluster.as_ref().expect("a cluster");
    assert!(!h.context.events.every_change_has_its_event());
    let events_node = cluster.owner_of("sigil:{events}:stream").await;
    // A session, and its subject's index, on other nodes than the feed's.
    let mut subject = 0;
    let created = loop {
        subject += 1;
        assert!(subject < 60, "60 sessions all had a key on the feed's node");
        let (created, _) = h
            .active_session(&format!("user-{subject}"), &["a:read"], vec![])
            .await;
        let index = index_key_of(cluster, &created.session_id).await;
        if cluster.owner_of(&session_key(&created.session_id)).await != events_node
            && cluster.owner_of(&index).await != events_node
        {
            break created;
        }
    };
    let latest = h.context.events.latest_event().await.expect("latest");
    // The feed's node refuses every write (NOREPLICAS: it has none).
    let mut feed_node = cluster.node(events_node).await;
    let refuse_writes = |replicas: u32| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(replicas)
            .to_owned()
    };
    let _: () = refuse_writes(1)
        .query_async(&mut feed_node)
        .await
        .expect("CONFIG SET");
    let revoked = revoke(&h, &created.session_id).await;
    let _: () = refuse_writes(0)
        .query_async(&mut feed_node)
        .await
        .expect("CONFIG SET");
    // The revocation is acknowledged and holds; its event is lost, as
    // docs/operations.md says a cluster's feed may lose one.
    revoked.expect("the revocation is acknowledged");
    let mut validator = h.validator().await;
    assert_eq!(
        who_am_i(&mut validator, &created.session_key).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        h.context.events.latest_event().await.expect("latest"),
        latest,
        "no event for the revocation"
    );
    // The feed goes on without a gap after the loss.
    let (later, _) = h.active_session("bob", &["a:read"], vec![]).await;
    let events = h
        .context
        .events
        .events_after(Some(latest), 100)
        .await
        .expect("no gap");
    assert!(
        events
            .iter()
            .any(|stored| stored.event.session_id.map(|id| id.to_string())
                == Some(later.session_id.clone()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_cache_refuses_to_start_on_a_redis_cluster() {
    let h = Harness::redis_cluster().await;
    // Neither source of invalidations covers a cluster: the feed may lose
    // an event, key tracking would need every master's.
    for (invalidation, names) in [
        (
            sigil_store::InvalidationSource::EventFeed,
            "SIGIL_SESSION_CACHE",
        ),
        (
            sigil_store::InvalidationSource::KeyTracking,
            "SIGIL_SESSION_CACHE_INVALIDATION",
        ),
    ] {
        let settings = KeySettings {
            issuer_url: format!("http://{}", h.address),
            jwks_refresh_interval: Duration::from_millis(50),
            template_cache_ttl: Duration::ZERO,
            session_cache: Some(sigil_store::SessionCacheSettings {
                max_entries: 10,
                time_to_live: Duration::from_secs(60),
                invalidation,
            }),
        };
        let error = sigil_validator::add_to(&mut Services::default(), &h.context, &settings)
            .expect_err("refused");
        assert!(error.contains(names), "{error}");
        assert!(error.contains("Redis Cluster"), "{error}");
    }
}

/// Calls made during a failover, by what they answered.
#[derive(Debug, Default)]
struct Tally {
    right: usize,
    unavailable: usize,
    wrong: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_answers_right_or_unavailable_and_recovers() {
    let cluster = RedisCluster::start(3, 1).await;
    let config = cluster_config(&cluster);
    let h = Harness::over_cluster(cluster.into_lease(), &config).await;
    let cluster = h.cluster.as_ref().expect("a cluster");
    let (valid, _) = h.active_session("ann", &["a:read"], vec![]).await;
    let (revoked, _) = h.active_session("bob", &["a:read"], vec![]).await;
    revoke(&h, &revoked.session_id).await.expect("revoked");

    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let stop = Arc::clone(&stop);
        let mut validator = h.validator().await;
        let (valid, revoked) = (valid.clone(), revoked.clone());
        async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::SeqCst) {
                for (created, expected) in [
                    (&valid, Ok(valid.session_id.clone())),
                    (&revoked, Err(Code::Unauthenticated)),
                ] {
                    let answer = who_am_i(&mut validator, &created.session_key).await;
                    if answer == expected {
                        tally.right += 1;
                    } else if answer == Err(Code::Unavailable) {
                        tally.unavailable += 1;
                    } else {
                        tally
                            .wrong
                            .push(format!("{answer:?} for {}", created.session_id));
                    }
                }
            }
            tally
        }
    });

    // Every replica takes over from its master, one after the other.
    for replica in cluster.replica_ports().await {
        let mut node = cluster.node(replica).await;
        let _: () = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query_async(&mut node)
            .await
            .expect("CLUSTER FAILOVER");
        let started = Instant::now();
        while cluster.replica_ports().await.contains(&replica) {
            assert!(started.elapsed() < DEADLINE, "the failover did not happen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    cluster.until_ok().await;

    // Recovered without a restart: right answers again, and new writes.
    let mut validator = h.validator().await;
    eventually("the valid session answers again", || {
        let mut validator = validator.clone();
        let key = valid.session_key.clone();
        let id = valid.session_id.clone();
        async move { who_am_i(&mut validator, &key).await == Ok(id) }
    })
    .await;
    let (after, _) = h.active_session("cid", &["a:read"], vec![]).await;
    revoke(&h, &after.session_id).await.expect("revoked after");
    assert_eq!(
        who_am_i(&mut validator, &after.session_key).await,
        Err(Code::Unauthenticated)
    );
    stop.store(true, Ordering::SeqCst);
    let tally = stream.await.expect("the stream of calls");
    assert!(tally.wrong.is_empty(), "wrong answers: {tally:?}");
    assert!(tally.right > 0, "{tally:?}");
    assert_eq!(
        who_am_i(&mut validator, &revoked.session_key).await,
        Err(Code::Unauthenticated),
        "the revocation survived the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_writes_wait_for_the_replica_of_their_own_node() {
    let cluster = RedisCluster::start(3, 1).await;
    let config = cluster_config(&cluster);
    let h = Harness::over_cluster(cluster.into_lease(), &config).await;
    let confirmed = |replicas, confirm_timeout| {
        let context = h.context_over(&sigil_store::RedisConfig {
            confirm_replicas: replicas,
            confirm_timeout,
            ..config.clone()
        });
        Server::spawn(&context, Role::All, listener_now())
    };
    let created_for_jwt = crate::jwt::alice(&h).await;
    crate::jwt::put(
        &h,
        crate::jwt::template("once", pb::SigningAlgorithm::Hs256),
    )
    .await;
    // One replica per master: one confirms, two never do. A healthy
    // replica acknowledges in milliseconds, so the wait that must succeed
    // may be generous (a loaded test machine), and the one that must run
    // out, short.
    let one = confirmed(1, Duration::from_secs(10));
    let two = confirmed(2, Duration::from_millis(300));
    for (server, expected) in [(&one, Ok(())), (&two, Err(Code::Unavailable))] {
        let (created, _) = h.active_session("ann", &["a:read"], vec![]).await;
        let answer = crate::harness::IssuerServiceClient::new(channel_to(server.address).await)
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: created.session_id.clone(),
            }))
            .await;
        assert_eq!(code_of(&answer), expected, "{answer:?}");
        // Unconfirmed is not undone: the revocation holds either way.
        let mut validator = ValidatorServiceClient::new(channel_to(server.address).await);
        assert_eq!(
            who_am_i(&mut validator, &created.session_key).await,
            Err(Code::Unauthenticated)
        );

        // A used jti and an API token revocation wait on their own nodes
        // too; unconfirmed, the token is spent all the same.
        let jwt = crate::jwt::token(&h, &created_for_jwt.0, "once").await.jwt;
        let consume = pb::VerifyTokenRequest {
            jwt,
            consume_jti: true,
            ..Default::default()
        };
        let answer = validator.verify_token(consume.clone()).await;
        assert_eq!(code_of(&answer), expected, "{answer:?}");
        let replay = validator.verify_token(consume).await.map(drop);
        assert_eq!(
            replay.map_err(|status| status.code()),
            Err(Code::Unauthenticated)
        );
        let mut edge_tokens =
            crate::harness::EdgeTokenServiceClient::new(channel_to(server.address).await);
        let (token, text) =
            crate::edge::create(&mut edge_tokens, pb::ApiTokenType::Backend, &["p"], "dev").await;
        let answer = edge_tokens
            .revoke_api_token(admin(pb::RevokeApiTokenRequest { id: token.id }))
            .await;
        assert_eq!(code_of(&answer), expected, "{answer:?}");
        assert!(
            crate::edge::valid(&mut edge_tokens, &[&text])
                .await
                .is_empty()
        );
    }
}

/// An answer's status code, or `Ok` (its message left for the failure text).
fn code_of<T>(answer: &Result<T, tonic::Status>) -> Result<(), Code> {
    answer.as_ref().map(drop).map_err(tonic::Status::code)
}

/// A bound listener, without awaiting.
fn listener_now() -> tokio::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    tokio::net::TcpListener::from_std(listener).expect("tokio listener")
}
