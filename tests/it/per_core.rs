//! The per-core scheduler of a service given several CPUs: connections
//! dealt between the main runtime and the workers, each worker serving its
//! own (with a Redis connection of its own), every one of them answering
//! right, through a Redis outage too, under one per-peer rate limit, and
//! all drained on shutdown.

use std::{net::SocketAddr, sync::Arc};

use sigil_proto::v1 as pb;
use sigil_runtime::{CreateSessionRates, RateLimits, Workers};
use tonic::{Code, transport::Channel};

use crate::{
    abuse::flood_until_rate_limited,
    harness::{
        Harness, IssuerServiceClient, Role, Server, ValidatorServiceClient, admin, channel_to,
        eventually, listener,
    },
    metrics::{sample, scrape_at},
};

both_stores!(calls_on_many_connections_are_answered_by_every_worker);

/// Connections opened to a server on two workers: an even count is dealt
/// half to each.
const CONNECTIONS: usize = 6;

/// Sigil's services on `h`'s store, served by this runtime and one worker.
async fn on_two_workers(h: &Harness) -> Server {
    let workers = Workers::start(1).expect("a worker thread");
    Server::spawn_on(
        &h.context,
        Role::All,
        listener().await,
        Some(Arc::new(workers)),
    )
}

/// `CONNECTIONS` channels to `address`, each a connection of its own.
async fn channels(address: SocketAddr) -> Vec<Channel> {
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(channel_to(address).await);
    }
    channels
}

/// Creates, authorizes and checks a session over `channel`: the session.
async fn session_through(channel: &Channel) -> pb::Session {
    let mut issuer = IssuerServiceClient::new(channel.clone());
    let created = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "wendy".into(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["doc:read".into()],
            ..Default::default()
        }))
        .await
        .expect("authorized");
    ValidatorServiceClient::new(channel.clone())
        .who_am_i(pb::WhoAmIRequest {
            session_token: created.session_key,
            ..Default::default()
        })
        .await
        .expect("WhoAmI")
        .into_inner()
        .session
        .expect("a session")
}

/// `series` of each worker by `/metrics` (process-wide: other servers'
/// connections may add to it).
fn per_worker(address: SocketAddr, series: &str) -> [f64; 2] {
    let metrics = scrape_at(address);
    ["0", "1"].map(|worker| sample(&metrics, series, &[("worker", worker)]))
}

async fn calls_on_many_connections_are_answered_by_every_worker(h: Harness) {
    let server = on_two_workers(&h).await;
    let channels = channels(server.address).await;
    let mut answered = Vec::new();
    for channel in &channels {
        // Every channel's calls run on the worker its connection was dealt.
        answered.push(session_through(channel).await);
    }
    assert!(answered.iter().all(|session| session.subject == "wendy"));
    // Each worker took half the connections (and a scrape one more), and
    // holds them open.
    let half = (CONNECTIONS / 2) as f64;
    for series in [
        "sigil_connections_accepted_total",
        "sigil_worker_connections",
    ] {
        let [main, worker] = per_worker(server.address, series);
        assert!(
            main >= half && worker >= half,
            "{series}: {main} on the main runtime, {worker} on the worker"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_answers_unavailable_while_redis_is_down_and_recovers() {
    let mut h = Harness::redis().await;
    let server = on_two_workers(&h).await;
    let channels = channels(server.address).await;
    for channel in &channels {
        session_through(channel).await;
    }
    let redis = h.redis.as_mut().expect("a redis-server");
    redis.stop();
    for channel in &channels {
        let refused = IssuerServiceClient::new(channel.clone())
            .create_session(pb::CreateSessionRequest::default())
            .await
            .expect_err("no store, no session");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    }
    redis.restart().await;
    // Each worker reconnects its own connection.
    for channel in &channels {
        eventually("CreateSession works again", || {
            let mut issuer = IssuerServiceClient::new(channel.clone());
            async move {
                issuer
                    .create_session(pb::CreateSessionRequest::default())
                    .await
                    .is_ok()
            }
        })
        .await;
        session_through(channel).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_through_both_workers_meets_one_rate_limit() {
    let h = Harness::memory().await;
    let mut context = h.context.clone();
    // One a second: the budget does not come back between the two checks.
    context.rate_limits = RateLimits::new(CreateSessionRates {
        per_peer: 1,
        global: 0,
    });
    let workers = Workers::start(1).expect("a worker thread");
    let server = Server::spawn_on(
        &context,
        Role::Issuer,
        listener().await,
        Some(Arc::new(workers)),
    );
    // One connection on each worker, from the same peer address.
    let first = IssuerServiceClient::new(channel_to(server.address).await);
    let second = IssuerServiceClient::new(channel_to(server.address).await);
    flood_until_rate_limited(|| {
        let mut issuer = second.clone();
        async move {
            issuer
                .create_session(pb::CreateSessionRequest::default())
                .await
        }
    })
    .await;
    // The other worker sees the same peer, and the same spent budget.
    let refused = first
        .clone()
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect_err("the peer is over its rate on every worker");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_every_worker_and_stops_accepting() {
    let h = Harness::memory().await;
    let server = on_two_workers(&h).await;
    let address = server.address;
    let channels = channels(address).await;
    for channel in &channels {
        session_through(channel).await;
    }
    // Returns only once every worker's server has returned.
    server.stop().await;
    let refused = tokio::net::TcpStream::connect(address).await;
    assert!(refused.is_err(), "still accepting after shutdown");
}
