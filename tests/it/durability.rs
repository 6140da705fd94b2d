//! Redis durability is Sigil's durability: with the append-only file on
//! (`appendonly yes`, `appendfsync everysec`), a `kill -9` of Redis under a
//! stream of CreateSession, AuthorizeSession and RevokeSession calls loses
//! nothing acknowledged more than the fsync window before the kill, and no
//! revoked session comes back.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sigil_proto::v1 as pb;
use sigil_runtime::Limits;
use tonic::Code;

use tonic::transport::Channel;

use crate::harness::{Harness, IssuerServiceClient, RedisServer, admin, eventually, with_bearer};

/// Where a session's stream of calls got to: each call moves it one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Pending,
    Active,
    Revoked,
}

impl Step {
    fn of(state: pb::SessionState) -> Step {
        match state {
            pb::SessionState::Pending => Step::Pending,
            pb::SessionState::Active => Step::Active,
            pb::SessionState::Revoked => Step::Revoked,
            other => panic!("a stored session is never {other:?}"),
        }
    }
}

/// One session the writer created, and what was acknowledged for it.
struct Written {
    id: String,
    key: String,
    /// Each acknowledged step, with when its answer arrived.
    acknowledged: Vec<(Step, Instant)>,
    /// The furthest step asked for, answered or not.
    attempted: Step,
}

/// Runs the stream until `stop` or the first failed call: session `n` is
/// created, then authorized unless `n % 3 == 0`, then revoked if
/// `n % 3 == 2`, so pending, active and revoked sessions all exist.
async fn write_stream(
    mut issuer: IssuerServiceClient<Channel>,
    written: Arc<Mutex<Vec<Written>>>,
    stop: Arc<AtomicBool>,
) {
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(created) = issuer
            .create_session(pb::CreateSessionRequest::default())
            .await
        else {
            return;
        };
        let created = created.into_inner();
        let index = {
            let mut written = written.lock().unwrap();
            written.push(Written {
                id: created.session_id.clone(),
                key: created.session_key.clone(),
                acknowledged: vec![(Step::Pending, Instant::now())],
                attempted: Step::Pending,
            });
            written.len() - 1
        };
        let acknowledge = |step: Step| {
            written.lock().unwrap()[index]
                .acknowledged
                .push((step, Instant::now()))
        };
        let attempt = |step: Step| written.lock().unwrap()[index].attempted = step;
        if n % 3 == 0 {
            continue;
        }
        attempt(Step::Active);
        let authorized = issuer
            .authorize_session(admin(pb::AuthorizeSessionRequest {
                nonce: created.nonce,
                permissions: vec!["orders:read".into()],
                ..Default::default()
            }))
            .await;
        if authorized.is_err() {
            return;
        }
        acknowledge(Step::Active);
        if n % 3 == 1 {
            continue;
        }
        attempt(Step::Revoked);
        let revoked = issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: created.session_id,
            }))
            .await;
        if revoked.is_err() {
            return;
        }
        acknowledge(Step::Revoked);
    }
}

async fn info_field(redis: &RedisServer, section: &str, field: &str) -> String {
    let mut connection = redis.connection().await;
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut connection)
        .await
        .expect("INFO answers");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in INFO {section}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_redis_with_aof_everysec_loses_nothing_acknowledged_a_second_before() {
    let redis = RedisServer::start_durable().await;
    let mut connection = redis.connection().await;
    for (name, value) in [("appendonly", "yes"), ("appendfsync", "everysec")] {
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(got, [name, value]);
    }
    let mut h = Harness::over_redis(redis, Limits::default()).await;

    let written = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_stream(
        h.issuer().await,
        written.clone(),
        stop.clone(),
    ));
    // Run the stream until fifty sessions were created longer ago than the
    // widest fsync window (2 s) and then some.
    eventually("fifty sessions older than the window", || {
        let old = written
            .lock()
            .unwrap()
            .iter()
            .filter(|session| session.acknowledged[0].1.elapsed() > Duration::from_millis(2500))
            .count();
        async move { old >= 50 }
    })
    .await;
    // everysec fsyncs once a second, but Redis postpones writing its buffer
    // while a slow fsync is still running, for up to two seconds: each such
    // postponement is counted in `aof_delayed_fsync`, and widens the window.
    let redis = h.redis.as_mut().expect("a Redis harness");
    assert_eq!(info_field(redis, "persistence", "aof_enabled").await, "1");
    assert_eq!(
        info_field(redis, "persistence", "aof_last_write_status").await,
        "ok"
    );
    let delayed = info_field(redis, "persistence", "aof_delayed_fsync").await;
    let window = if delayed == "0" {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(2)
    };
    let killed_at = Instant::now();
    redis.stop();
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("the writer ends");
    redis.restart().await;
    let cutoff = killed_at - window;

    let mut issuer = h.issuer().await;
    let mut validator = h.validator().await;
    let written = std::mem::take(&mut *written.lock().unwrap());
    let first = written.first().expect("sessions were written").id.clone();
    eventually("the store reconnects", || {
        let mut issuer = issuer.clone();
        let session_id = first.clone();
        async move {
            issuer
                .get_session(admin(pb::GetSessionRequest { session_id }))
                .await
                .is_ok()
        }
    })
    .await;

    let (mut kept, mut late_kept, mut late_lost) = (0, 0, 0);
    for session in &written {
        let durable = session
            .acknowledged
            .iter()
            .filter(|(_, at)| *at < cutoff)
            .map(|(step, _)| *step)
            .max();
        let found = issuer
            .get_session(admin(pb::GetSessionRequest {
                session_id: session.id.clone(),
            }))
            .await;
        let now = match found {
            Ok(found) => Some(Step::of(found.into_inner().session.unwrap().state())),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("{}: {status:?}", session.id),
        };
        // Never less than what was acknowledged before the window, never
        // more than was asked for.
        assert!(
            now >= durable,
            "{}: acknowledged {durable:?} before the window, {now:?} after the restart",
            session.id
        );
        assert!(now <= Some(session.attempted), "{}: {now:?}", session.id);
        if durable.is_some() {
            kept += 1;
        } else if now >= session.acknowledged.last().map(|(step, _)| *step) {
            late_kept += 1;
        } else {
            late_lost += 1;
        }
        // A revoked session never authenticates again; an active one does.
        let who = validator
            .who_am_i(with_bearer(pb::WhoAmIRequest::default(), &session.key))
            .await;
        match now {
            Some(Step::Active) => assert!(who.is_ok(), "{}: {who:?}", session.id),
            _ => assert_eq!(who.unwrap_err().code(), Code::Unauthenticated),
        }
    }
    assert!(
        kept >= 50,
        "most sessions were older than the window: {kept}"
    );
    eprintln!(
        "durability: {} sessions written, {kept} acknowledged before the {window:?} window all \
         kept; inside it {late_kept} kept, {late_lost} lost",
        written.len()
    );
}
