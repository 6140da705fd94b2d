//! A failover to a partitioned replica, staged: the replica reaches its
//! primary through a [`TcpProxy`], the proxy is cut, sessions are revoked on
//! the primary, the replica is promoted (`REPLICAOF NO ONE`) and a Sigil
//! over it counts the sessions whose acknowledged revocation it lost. With
//! `SIGIL_REDIS_CONFIRM_REPLICAS` none is acknowledged, so none is lost;
//! without it, every one is: the Jepsen case the setting exists for.

use std::{net::SocketAddr, time::Instant};

use redis::AsyncCommands;
use sigil_proto::v1 as pb;
use sigil_runtime::Limits;
use sigil_store::RedisConfig;
use tonic::Code;

use crate::harness::{
    DEADLINE, Harness, IssuerServiceClient, RedisServer, Role, Server, ValidatorServiceClient,
    admin, channel_to, eventually, listener, proxy::TcpProxy, redis_config,
};

/// Waits until `replica`'s link to its primary is `up` or not.
async fn until_link(replica: &RedisServer, up: bool) {
    let mut connection = replica.connection().await;
    let started = Instant::now();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut connection)
            .await
            .expect("INFO");
        if info.contains("master_link_status:up") == up {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "the link did not change");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Revokes each of `sessions` through a Sigil over `primary` confirming on
/// `confirm_replicas`; the ids of those acknowledged.
async fn revoke_all(
    h: &Harness,
    primary: &RedisServer,
    confirm_replicas: usize,
    sessions: &[pb::CreateSessionResponse],
) -> Vec<String> {
    let context = h.context_over(&RedisConfig {
        confirm_replicas,
        ..redis_config(primary)
    });
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let mut issuer = IssuerServiceClient::new(channel_to(server.address).await);
    let mut acknowledged = Vec::new();
    for session in sessions {
        let answer = issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: session.session_id.clone(),
            }))
            .await;
        match answer.map_err(|status| status.code()) {
            Ok(_) => acknowledged.push(session.session_id.clone()),
            Err(Code::Unavailable) => {}
            Err(code) => panic!("a revocation answered {code:?}"),
        }
    }
    acknowledged
}

/// How many of the sessions whose revocation was `acknowledged` are
/// valid again through `validator`: acknowledged revocations lost.
async fn valid_again(
    validator: &mut ValidatorServiceClient<tonic::transport::Channel>,
    sessions: &[pb::CreateSessionResponse],
    acknowledged: &[String],
) -> usize {
    let mut lost = 0;
    for session in sessions {
        if !acknowledged.contains(&session.session_id) {
            continue;
        }
        let answer = validator
            .who_am_i(pb::WhoAmIRequest {
                session_token: session.session_key.clone(),
                ..Default::default()
            })
            .await;
        lost += usize::from(answer.is_ok());
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_replica_promoted_loses_only_unconfirmed_revocations() {
    let primary = RedisServer::start().await;
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], primary.port()))).await;
    let replica = RedisServer::start_replica_through(proxy.address.port()).await;
    let h = Harness::over_redis(primary, Limits::default()).await;
    let primary = h.redis.as_ref().expect("redis");

    let mut sessions = Vec::new();
    for n in 0..10 {
        let (created, _) = h
            .active_session(&format!("user{n}"), &["read"], vec![])
            .await;
        sessions.push(created);
    }
    // Everything so far reached the replica.
    eventually("the replica holds every session", || {
        let replica = &replica;
        let sessions = &sessions;
        async move {
            let mut connection = replica.connection().await;
            for session in sessions {
                let data: Option<String> = connection
                    .hget(format!("sigil:{{{}}}:session", session.session_id), "data")
                    .await
                    .expect("HGET");
                if !data.is_some_and(|data| data.contains("\"active\"")) {
                    return false;
                }
            }
            true
        }
    })
    .await;

    // The partition: the primary goes on alone.
    proxy.cut();
    until_link(&replica, false).await;
    let (confirmed, unconfirmed) = sessions.split_at(5);
    let acknowledged_confirmed = revoke_all(&h, primary, 1, confirmed).await;
    let acknowledged_unconfirmed = revoke_all(&h, primary, 0, unconfirmed).await;
    assert!(
        acknowledged_confirmed.is_empty(),
        "acknowledged without a replica: {acknowledged_confirmed:?}"
    );
    assert_eq!(acknowledged_unconfirmed.len(), unconfirmed.len());

    // The failover: the replica is promoted, and Sigil pointed at it.
    let mut connection = replica.connection().await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut connection)
        .await
        .expect("REPLICAOF NO ONE");
    let context = h.context_over(&redis_config(&replica));
    let server = Server::spawn(&context, Role::All, listener().await);
    let mut validator = ValidatorServiceClient::new(channel_to(server.address).await);
    let lost_confirmed = valid_again(&mut validator, &sessions, &acknowledged_confirmed).await;
    let lost_unconfirmed = valid_again(&mut validator, &sessions, &acknowledged_unconfirmed).await;
    eprintln!(
        "partitioned replica promoted: {lost_confirmed} of 0 acknowledged revocations lost with \
         confirmation, {lost_unconfirmed} of {} without",
        acknowledged_unconfirmed.len()
    );
    assert_eq!(lost_confirmed, 0);
    // Without confirmation, the promoted replica never heard of any of
    // them: every acknowledged revocation is undone.
    assert_eq!(lost_unconfirmed, acknowledged_unconfirmed.len());
}
