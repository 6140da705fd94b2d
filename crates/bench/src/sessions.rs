//! The sessions the read scenarios draw on: created through Sigil's own
//! CreateSession and AuthorizeSession, many at once, before any measurement.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use sigil_proto::v1 as pb;
use tokio::task::JoinSet;
use tonic::Code;

use crate::{
    BenchError,
    load::connect,
    rng::FastRng,
    scenario::{AdminBearer, CallFailure, Clients},
};

/// The permission every benchmark session holds outright.
pub const HELD_PERMISSION: &str = "token:read";
/// The permission only the session's access rules grant, and only on
/// `tokens/pci/*`.
pub const RULE_PERMISSION: &str = "token:reveal";
/// Tries per session before a failure to create it ends the run.
const MAX_ATTEMPTS: usize = 3;
/// Sessions share this many subjects, so the subject index is exercised
/// without one huge set.
const SUBJECTS: usize = 10_000;

/// The session keys of active sessions. Never printed.
#[derive(Clone)]
pub struct SessionPool(Arc<[String]>);

impl SessionPool {
    /// A pool of the session keys `keys`.
    pub fn new(keys: Vec<String>) -> SessionPool {
        SessionPool(keys.into())
    }

    /// A session key chosen at random.
    pub fn pick(&self, rng: &mut FastRng) -> &str {
        &self.0[rng.below(self.0.len())]
    }

    /// The `index`th session key, wrapping around the pool.
    pub fn nth(&self, index: usize) -> &str {
        &self.0[index % self.0.len()]
    }
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionPool({} keys [redacted])", self.0.len())
    }
}

/// How long creating the pool took.
#[derive(Debug, Clone, Serialize)]
pub struct Creation {
    /// Sessions created and authorized.
    pub sessions: usize,
    /// Seconds it took, CreateSession and AuthorizeSession each.
    pub seconds: f64,
    /// Sessions per second.
    pub per_second: f64,
    /// Creations tried again after UNAVAILABLE or a client timeout.
    pub retries: usize,
}

/// What every benchmark session is granted: [`HELD_PERMISSION`], and
/// [`RULE_PERMISSION`] by a rule on `tokens/pci/*` that a broader rule on
/// `tokens/**` (granting something else) follows.
pub fn authorization(nonce: String) -> pb::AuthorizeSessionRequest {
    pb::AuthorizeSessionRequest {
        nonce,
        permissions: vec![HELD_PERMISSION.into()],
        rules: vec![
            pb::AccessRule {
                priority: 1,
                description: "card tokens".into(),
                resource: "tokens/pci/*".into(),
                permissions: vec![RULE_PERMISSION.into()],
            },
            pb::AccessRule {
                priority: 2,
                description: "every other token".into(),
                resource: "tokens/**".into(),
                permissions: vec!["token:list".into()],
            },
        ],
        ..Default::default()
    }
}

/// Creates a session for `subject`, authorizes it as [`authorization`]
/// says, and returns its session key.
pub async fn create_active(
    clients: &mut Clients,
    admin: &AdminBearer,
    subject: &str,
) -> Result<String, CallFailure> {
    let created = clients
        .issuer
        .create_session(pb::CreateSessionRequest {
            subject: subject.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    clients
        .issuer
        .authorize_session(admin.request(authorization(created.nonce)))
        .await?;
    Ok(created.session_key)
}

/// How to create the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    /// Sessions to create.
    pub count: usize,
    /// Connections to use.
    pub connections: usize,
    /// Sessions being created at once.
    pub concurrency: usize,
    /// Give up on one session after this long.
    pub request_timeout: Duration,
    /// Give up on the whole pool after this long.
    pub deadline: Duration,
}

/// Creates active sessions at `endpoint` as `shape` says.
pub async fn create_pool(
    endpoint: &str,
    admin: &AdminBearer,
    shape: PoolShape,
) -> Result<(SessionPool, Creation), BenchError> {
    let PoolShape {
        count,
        connections,
        concurrency,
        request_timeout,
        deadline,
    } = shape;
    let channels = connect(endpoint, connections).await?;
    let started = Instant::now();
    let give_up_at = started + deadline;
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for worker in 0..concurrency.min(count) {
        let mut clients = Clients::new(channels[worker % channels.len()].clone());
        let next = next.clone();
        let retries = retries.clone();
        let admin = admin.clone();
        workers.spawn(async move {
            let mut keys = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok(keys);
                }
                if Instant::now() > give_up_at {
                    return Err(BenchError("creating sessions took too long".into()));
                }
                let subject = format!("bench-subject-{}", index % SUBJECTS);
                let mut attempt = 1;
                let key = loop {
                    let created = tokio::time::timeout(
                        request_timeout,
                        create_active(&mut clients, &admin, &subject),
                    )
                    .await
                    .unwrap_or(Err(CallFailure::ClientTimeout));
                    match created {
                        Ok(key) => break key,
                        // A store deadline missed on a busy machine is worth
                        // another try; anything else is a real failure.
                        Err(
                            CallFailure::Status(Code::Unavailable) | CallFailure::ClientTimeout,
                        ) if attempt < MAX_ATTEMPTS => {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(failure) => {
                            return Err(BenchError(format!(
                                "creating a session failed ({} attempts): {}",
                                attempt,
                                failure.name()
                            )));
                        }
                    }
                };
                keys.push(key);
            }
        });
    }
    let mut keys = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(Ok(mut created))) => keys.append(&mut created),
                Some(Ok(Err(error))) => return Err(error),
                Some(Err(error)) => return Err(BenchError(format!("a session creator failed: {error}"))),
                None => break,
            },
            _ = ticker.tick() => {
                let done = next.load(Ordering::Relaxed).min(count);
                eprintln!("sessions: {done}/{count} in {:.0} s", started.elapsed().as_secs_f64());
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let creation = Creation {
        retries: retries.load(Ordering::Relaxed),
        sessions: keys.len(),
        seconds,
        per_second: keys.len() as f64 / seconds.max(f64::EPSILON),
    };
    Ok((SessionPool(keys.into()), creation))
}
