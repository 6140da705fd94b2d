//! Setup written straight into Sigil's Redis, for data-growth runs that
//! need a million live sessions or API tokens: Sigil's own domain rules
//! make each record (as CreateSession + AuthorizeSession or CreateApiToken
//! would) and Sigil's own store code writes it, many writes in flight over
//! one multiplexed connection — no gRPC call, no server CPU. About 50 times
//! as fast as the API on a two-core machine, where a million sessions
//! through the API took a quarter of an hour.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{ApiTokenType, Authorization, NewApiToken, NewSession};
use sigil_proto::v1 as pb;
use sigil_runtime::Context;
use tokio::task::JoinSet;

use crate::{
    BenchError,
    api_tokens::ApiTokenBatch,
    sessions::{self, Creation, SessionPool},
};

/// Records being written at once.
const WRITERS: usize = 256;
/// Subjects the sessions share, as the API path's pool does.
const SUBJECTS: usize = 10_000;

/// What a writer makes: one record written, its secret string back.
type Write = fn(&Context, usize) -> Result<(String, Record), BenchError>;

/// A record ready for the store.
enum Record {
    Session(Box<sigil_domain::SessionRecord>),
    ApiToken(Box<sigil_domain::ApiTokenRecord>),
}

/// Writes `count` active sessions, each granted what the API path's
/// sessions are ([`sessions::authorization`]), into `context`'s store.
pub async fn create_sessions(
    context: &Context,
    count: usize,
) -> Result<(SessionPool, Creation), BenchError> {
    let (keys, creation) = write_all(context, count, "sessions", make_session).await?;
    Ok((SessionPool::new(keys), creation))
}

/// Writes `count` backend API tokens, like the ones the validation
/// scenarios create, into `context`'s store.
pub async fn create_api_tokens(
    context: &Context,
    count: usize,
) -> Result<(ApiTokenBatch, Creation), BenchError> {
    let (texts, creation) = write_all(context, count, "API tokens", make_api_token).await?;
    Ok((ApiTokenBatch::new(texts), creation))
}

fn make_session(context: &Context, index: usize) -> Result<(String, Record), BenchError> {
    let refused =
        |error: sigil_domain::Error| BenchError(format!("cannot make a session: {error}"));
    let now = context.clock.now();
    let mut rng = UnwrapErr(SysRng);
    let command = NewSession::try_from(pb::CreateSessionRequest {
        subject: format!("bench-subject-{}", index % SUBJECTS),
        ..Default::default()
    })
    .map_err(refused)?;
    let (record, key, nonce) = command
        .issue(&context.policy, now, &mut rng)
        .map_err(refused)?;
    let authorization =
        Authorization::try_from(sessions::authorization(nonce.expose())).map_err(refused)?;
    let active = record
        .authorize(&authorization, &context.policy, now)
        .map_err(refused)?;
    Ok((key.expose(), Record::Session(Box::new(active))))
}

fn make_api_token(context: &Context, index: usize) -> Result<(String, Record), BenchError> {
    let (record, secret) = NewApiToken::new(
        &format!("bench-{index}"),
        Some(ApiTokenType::Backend),
        &["default".to_owned()],
        "development",
        None,
    )
    .and_then(|command| command.issue(context.clock.now(), &mut UnwrapErr(SysRng)))
    .map_err(|error| BenchError(format!("cannot make an API token: {error}")))?;
    Ok((
        secret.expose().to_owned(),
        Record::ApiToken(Box::new(record)),
    ))
}

async fn write_all(
    context: &Context,
    count: usize,
    what: &'static str,
    make: Write,
) -> Result<(Vec<String>, Creation), BenchError> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = JoinSet::new();
    for _ in 0..WRITERS.min(count) {
        let context = context.clone();
        let next = next.clone();
        writers.spawn(async move {
            let mut secrets = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok::<_, BenchError>(secrets);
                }
                let (secret, record) = make(&context, index)?;
                let written = match &record {
                    Record::Session(record) => context.store.insert(record).await,
                    Record::ApiToken(record) => context.api_tokens.insert_token(record).await,
                };
                written.map_err(|error| {
                    BenchError(format!("writing {what} to Redis failed: {error}"))
                })?;
                secrets.push(secret);
            }
        });
    }
    let mut secrets = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = writers.join_next() => match joined {
                Some(Ok(written)) => secrets.append(&mut written?),
                Some(Err(error)) => return Err(BenchError(format!("a writer failed: {error}"))),
                None => break,
            },
            _ = ticker.tick() => {
                let done = next.load(Ordering::Relaxed).min(count);
                eprintln!("{what}: {done}/{count} written to Redis in {:.0} s", started.elapsed().as_secs_f64());
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let creation = Creation {
        sessions: secrets.len(),
        seconds,
        per_second: secrets.len() as f64 / seconds.max(f64::EPSILON),
        retries: 0,
    };
    Ok((secrets, creation))
}
