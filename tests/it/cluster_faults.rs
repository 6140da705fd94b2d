//! Faults of a Redis Cluster under a stream of calls: a master killed with
//! SIGKILL (its replica takes over after `cluster-node-timeout`) while
//! sessions are revoked with replica confirmation, and slots holding live
//! sessions moved between masters. Every answer is right or UNAVAILABLE,
//! never a revoked session valid; the service recovers without a restart.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sigil_proto::v1 as pb;
use sigil_store::RedisConfig;
use tonic::Code;

use crate::harness::{
    DEADLINE, Harness, IssuerServiceClient, RedisCluster, Role, Server, ValidatorServiceClient,
    admin, channel_to, cluster_config, eventually, listener,
};
use crate::redis_cluster::who_am_i;

fn session_key(session_id: &str) -> String {
    format!("sigil:{{{session_id}}}:session")
}

/// What the stream knows of a session's revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    /// Never asked: the session must be valid.
    None,
    /// Asked, answered UNAVAILABLE: either answer is right until a retry
    /// is acknowledged.
    Unsure,
    /// Acknowledged: the session must never be valid again.
    Acknowledged,
}

/// Calls made during a fault, by what they answered.
#[derive(Debug, Default)]
struct Tally {
    right: usize,
    unavailable: usize,
    wrong: Vec<String>,
}

impl Tally {
    /// Counts a WhoAmI `answer` for `session`, in `state`.
    fn who_am_i(
        &mut self,
        session: &pb::CreateSessionResponse,
        state: Revocation,
        answer: Result<String, Code>,
    ) {
        let valid = answer.as_ref() == Ok(&session.session_id);
        let refused = answer == Err(Code::Unauthenticated);
        match (state, valid, refused) {
            (Revocation::None, true, _)
            | (Revocation::Acknowledged, _, true)
            | (Revocation::Unsure, true, _)
            | (Revocation::Unsure, _, true) => self.right += 1,
            _ if answer == Err(Code::Unavailable) => self.unavailable += 1,
            _ => self
                .wrong
                .push(format!("{answer:?} for {} ({state:?})", session.session_id)),
        }
    }
}

/// `count` active sessions of subjects `prefix0`, `prefix1`…
async fn active_sessions(
    h: &Harness,
    prefix: &str,
    count: usize,
) -> Vec<pb::CreateSessionResponse> {
    let mut sessions = Vec::with_capacity(count);
    for n in 0..count {
        let (created, _) = h
            .active_session(&format!("{prefix}{n}"), &["a:read"], vec![])
            .await;
        sessions.push(created);
    }
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_master_loses_no_confirmed_revocation_and_recovers() {
    let cluster = RedisCluster::start(3, 1).await;
    let config = cluster_config(&cluster);
    let h = Harness::over_cluster(cluster.into_lease(), &config).await;
    let cluster = h.cluster.as_ref().expect("a cluster");
    // Revocations confirmed by the replica of their own master, which is
    // the one a failover promotes.
    let context = h.context_over(&RedisConfig {
        confirm_replicas: 1,
        confirm_timeout: Duration::from_millis(100),
        ..config.clone()
    });
    let server = Server::spawn(&context, Role::All, listener().await);
    let sessions = Arc::new(active_sessions(&h, "user", 16).await);
    // Every other session is revoked during the stream: each round asks
    // for one more, and again for each not acknowledged yet.
    let states = Arc::new(Mutex::new(vec![Revocation::None; sessions.len()]));
    let rounds = Arc::new(AtomicUsize::new(0));

    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let (stop, sessions, states, rounds) = (
            stop.clone(),
            sessions.clone(),
            states.clone(),
            rounds.clone(),
        );
        let mut issuer = IssuerServiceClient::new(channel_to(server.address).await);
        let mut validator = ValidatorServiceClient::new(channel_to(server.address).await);
        async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::SeqCst) {
                let asked = {
                    let states = states.lock().unwrap();
                    let next = (0..sessions.len())
                        .step_by(2)
                        .find(|&n| states[n] == Revocation::None);
                    (0..sessions.len())
                        .step_by(2)
                        .filter(|&n| states[n] == Revocation::Unsure || Some(n) == next)
                        .collect::<Vec<_>>()
                };
                for n in asked {
                    let answer = issuer
                        .revoke_session(admin(pb::RevokeSessionRequest {
                            session_id: sessions[n].session_id.clone(),
                        }))
                        .await;
                    let state = match answer.map_err(|status| status.code()) {
                        Ok(_) => Revocation::Acknowledged,
                        Err(Code::Unavailable) => Revocation::Unsure,
                        Err(code) => {
                            tally.wrong.push(format!("revocation answered {code:?}"));
                            Revocation::Unsure
                        }
                    };
                    states.lock().unwrap()[n] = state;
                }
                for (n, session) in sessions.iter().enumerate() {
                    let state = states.lock().unwrap()[n];
                    let answer = who_am_i(&mut validator, &session.session_key).await;
                    tally.who_am_i(session, state, answer);
                }
                rounds.fetch_add(1, Ordering::SeqCst);
            }
            tally
        }
    });

    // Kill the master holding the first session, as soon as its
    // revocation is acknowledged.
    eventually("the first revocation acknowledged", || {
        let done = states.lock().unwrap()[0] == Revocation::Acknowledged;
        async move { done }
    })
    .await;
    // A short node timeout, so the failover takes about a second.
    for port in cluster.ports() {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-node-timeout")
            .arg(500)
            .query_async(&mut cluster.node(port).await)
            .await
            .expect("CONFIG SET");
    }
    let victim = cluster
        .owner_of(&session_key(&sessions[0].session_id))
        .await;
    let heir = cluster.replica_of(victim).await;
    cluster.kill(victim);
    let started = Instant::now();
    while !cluster.is_master(heir).await {
        assert!(
            started.elapsed() < DEADLINE,
            "the replica did not take over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.until_ok().await;
    // Every revocation asked, and two whole rounds after the failover:
    // each not yet acknowledged was asked again on the new topology.
    let after = rounds.load(Ordering::SeqCst);
    eventually(
        "every revocation asked, two rounds after the failover",
        || {
            let done = rounds.load(Ordering::SeqCst) >= after + 2
                && !states
                    .lock()
                    .unwrap()
                    .iter()
                    .step_by(2)
                    .any(|&state| state == Revocation::None);
            async move { done }
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let tally = stream.await.expect("the stream of calls");
    assert!(tally.wrong.is_empty(), "wrong answers: {tally:?}");
    assert!(tally.unavailable > 0, "the kill was not felt: {tally:?}");

    // Recovered without a restart: every revocation on a master that still
    // has a replica is acknowledged; on the promoted one, which has none
    // left, each asked after the kill stays UNAVAILABLE (it holds on that
    // master) until a replica joins it.
    let states = states.lock().unwrap().clone();
    let mut unconfirmed_on_heir = 0;
    for (n, session) in sessions.iter().enumerate().step_by(2) {
        let on_heir = cluster.owner_of(&session_key(&session.session_id)).await == heir;
        if on_heir {
            unconfirmed_on_heir += usize::from(states[n] == Revocation::Unsure);
        } else {
            assert_eq!(
                states[n],
                Revocation::Acknowledged,
                "{}",
                session.session_id
            );
        }
    }
    // Afterwards, through a fresh connection: each revoked session refused,
    // each other one valid, the killed master's included.
    let mut validator = ValidatorServiceClient::new(channel_to(server.address).await);
    for (n, session) in sessions.iter().enumerate() {
        let expected = if n % 2 == 0 {
            Err(Code::Unauthenticated)
        } else {
            Ok(session.session_id.clone())
        };
        assert_eq!(
            who_am_i(&mut validator, &session.session_key).await,
            expected
        );
    }
    // And new sessions and unconfirmed writes work on every master.
    let (after, _) = h.active_session("after", &["a:read"], vec![]).await;
    assert_eq!(
        who_am_i(&mut validator, &after.session_key).await,
        Ok(after.session_id.clone())
    );
    eprintln!(
        "master killed: {tally:?} (wrong: none); {unconfirmed_on_heir} revocations left \
         unconfirmed on the promoted master"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_slots_of_live_sessions_answers_right_or_unavailable() {
    let cluster = RedisCluster::start(3, 0).await;
    let config = cluster_config(&cluster);
    let h = Harness::over_cluster(cluster.into_lease(), &config).await;
    let cluster = h.cluster.as_ref().expect("a cluster");
    let sessions = Arc::new(active_sessions(&h, "moved", 8).await);
    let mut issuer = h.issuer().await;
    // Half of them revoked before the move.
    let states: Vec<Revocation> = (0..sessions.len())
        .map(|n| {
            if n % 2 == 0 {
                Revocation::Acknowledged
            } else {
                Revocation::None
            }
        })
        .collect();
    for (session, _) in sessions
        .iter()
        .zip(&states)
        .filter(|(_, state)| **state != Revocation::None)
    {
        issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: session.session_id.clone(),
            }))
            .await
            .expect("revoked");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let (stop, sessions, states) = (stop.clone(), sessions.clone(), states.clone());
        let mut validator = h.validator().await;
        async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::SeqCst) {
                for (session, state) in sessions.iter().zip(&states) {
                    let answer = who_am_i(&mut validator, &session.session_key).await;
                    tally.who_am_i(session, *state, answer);
                }
            }
            tally
        }
    });

    // Each session's slot moves to the next master while the stream runs.
    let masters: Vec<u16> = {
        let mut masters = Vec::new();
        for port in cluster.ports() {
            if cluster.is_master(port).await {
                masters.push(port);
            }
        }
        masters
    };
    let mut node = cluster.node(masters[0]).await;
    for session in sessions.iter() {
        let key = session_key(&session.session_id);
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&key)
            .query_async(&mut node)
            .await
            .expect("CLUSTER KEYSLOT");
        let from = cluster.owner_of(&key).await;
        let at = masters
            .iter()
            .position(|&port| port == from)
            .expect("a master");
        let to = masters[(at + 1) % masters.len()];
        cluster.move_slot(slot, from, to).await;
        assert_eq!(cluster.owner_of(&key).await, to, "{key} moved");
    }
    cluster.until_ok().await;
    stop.store(true, Ordering::SeqCst);
    let tally = stream.await.expect("the stream of calls");
    assert!(tally.wrong.is_empty(), "wrong answers: {tally:?}");
    assert!(tally.right > 0, "{tally:?}");
    let mut validator = h.validator().await;
    for (session, state) in sessions.iter().zip(&states) {
        let expected = match state {
            Revocation::None => Ok(session.session_id.clone()),
            _ => Err(Code::Unauthenticated),
        };
        assert_eq!(
            who_am_i(&mut validator, &session.session_key).await,
            expected
        );
    }
    eprintln!("slots moved: {tally:?} (wrong: none)");
}
