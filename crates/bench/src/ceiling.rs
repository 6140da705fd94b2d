//! The ceilings that are not servers, measured in the same run as the
//! Sigil figures they bound:
//!
//! - the raw jsonwebtoken verify rate of each algorithm, on the very JWTs
//!   the VerifyToken scenario sends, per CPU-second of the thread doing it;
//! - a raw `MGET` of N keys through the redis crate, one call at a time,
//!   of values as large as Sigil's API-token records;
//! - Sigil's own in-process work on a batch of N API tokens (parsing the
//!   strings, decoding the records, checking the secrets), per batch.
//!
//! All three run in sigil-bench's process. The verify and parsing figures
//! are per CPU-second of a thread of their own, pinned to the server's CPU
//! (`--server-cpu`) when there is one: on this kind of virtual machine the
//! same code ran about a third slower on one vCPU than on the other while
//! the other was busy, so the ceiling is measured where the server runs.
//! The MGET latency is Redis's and the wire's, from the load's CPU.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use getrandom::{SysRng, rand_core::UnwrapErr};
use hdrhistogram::Histogram;
use jsonwebtoken::{
    Algorithm as JwtAlgorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header,
    encode,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sigil_domain::{ApiTokenRecord, ApiTokenType, NewApiToken, Timestamp, parse_batch};
use sigil_proto::{jwt::jwk_from_pb, v1 as pb};

use crate::{BenchError, jwts::Algorithm, load::connect, pin, scenario::Clients};

/// Most calls one MGET ceiling makes, however long it may run.
const MAX_MGET_CALLS: u64 = 2000;
/// Prefix of the keys the MGET ceiling reads; Sigil never uses it.
const MGET_KEY_PREFIX: &str = "sigil-bench:mget:";

/// Raw jsonwebtoken verification of one algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyCeiling {
    /// Which algorithm.
    pub algorithm: Algorithm,
    /// Tokens verified.
    pub verified: u64,
    /// CPU time of the verifying thread, in seconds.
    pub cpu_seconds: f64,
    /// Verifications per CPU-second.
    pub per_cpu_second: f64,
}

/// A raw `MGET` through the redis crate, one call in flight.
#[derive(Debug, Clone, Serialize)]
pub struct MgetCeiling {
    /// Keys per `MGET`.
    pub keys: usize,
    /// Bytes of each value: one API-token record as Sigil stores it.
    pub value_bytes: usize,
    /// Calls measured.
    pub calls: u64,
    /// Latency percentiles, in microseconds.
    pub p50_micros: u64,
    /// See `p50_micros`.
    pub p99_micros: u64,
    /// Mean latency, in microseconds.
    pub mean_micros: f64,
}

/// Sigil's in-process work on a batch of API tokens.
#[derive(Debug, Clone, Serialize)]
pub struct ParseCeiling {
    /// Tokens per batch.
    pub tokens: usize,
    /// Batches processed.
    pub batches: u64,
    /// CPU microseconds per batch: `parse_batch` of the strings, JSON
    /// decoding of each record, and the secret check.
    pub micros_per_batch: f64,
}

/// Measures raw verification of `jwts` (minted by the Sigil at `endpoint`
/// from `algorithm`'s template) with jsonwebtoken alone: the public key
/// from the Sigil's JWKS, or for HS256, whose secret never leaves Sigil,
/// the same claims re-signed with a fresh 32-byte secret.
pub async fn raw_verify(
    endpoint: &str,
    algorithm: Algorithm,
    jwts: &[String],
    time: Duration,
    cpu: Option<usize>,
) -> Result<VerifyCeiling, BenchError> {
    let (tokens, key) = match algorithm {
        Algorithm::Hs256 => resigned_hs256(jwts)?,
        _ => (jwts.to_vec(), jwks_key(endpoint, jwts).await?),
    };
    let mut validation = Validation::new(jwt_algorithm(algorithm));
    validation.validate_aud = false;
    on_own_thread(cpu, move || {
        let started_cpu = thread_cpu_time();
        let started = Instant::now();
        let mut verified = 0u64;
        while started.elapsed() < time {
            for jwt in &tokens {
                decode::<Map<String, Value>>(jwt, &key, &validation).map_err(|error| {
                    BenchError(format!("raw {algorithm:?} verify failed: {error}"))
                })?;
                verified += 1;
            }
        }
        let cpu_seconds = thread_cpu_time()
            .zip(started_cpu)
            .map_or_else(|| started.elapsed(), |(end, start)| end - start)
            .as_secs_f64();
        Ok(VerifyCeiling {
            algorithm,
            verified,
            cpu_seconds,
            per_cpu_second: verified as f64 / cpu_seconds.max(f64::EPSILON),
        })
    })
    .await
}

/// API tokens as Sigil makes them: their strings and their records as
/// Sigil stores them (JSON). Made in process, never sent to Sigil.
pub struct SampleTokens {
    texts: Vec<String>,
    records: Vec<String>,
}

impl SampleTokens {
    /// `count` backend tokens, like the ones the validation scenarios create.
    pub fn new(count: usize) -> Result<SampleTokens, BenchError> {
        let now = now();
        let mut rng = UnwrapErr(SysRng);
        let mut texts = Vec::with_capacity(count);
        let mut records = Vec::with_capacity(count);
        for index in 0..count {
            let (record, secret) = NewApiToken::new(
                &format!("bench-{index}"),
                Some(ApiTokenType::Backend),
                &["default".to_owned()],
                "development",
                None,
            )
            .and_then(|command| command.issue(now, &mut rng))
            .map_err(|error| BenchError(format!("cannot make a sample API token: {error}")))?;
            records.push(
                serde_json::to_string(&record)
                    .map_err(|error| BenchError(format!("cannot encode a record: {error}")))?,
            );
            texts.push(secret.expose().to_owned());
        }
        Ok(SampleTokens { texts, records })
    }
}

/// Measures Sigil's in-process work on the batch `sample`, for `time`.
pub async fn parse_cost(
    sample: SampleTokens,
    time: Duration,
    cpu: Option<usize>,
) -> Result<ParseCeiling, BenchError> {
    on_own_thread(cpu, move || {
        let now = now();
        let started_cpu = thread_cpu_time();
        let started = Instant::now();
        let mut batches = 0u64;
        while started.elapsed() < time {
            let parsed = parse_batch(&sample.texts);
            let mut accepted = 0usize;
            for ((_, presented), json) in parsed.iter().zip(&sample.records) {
                let record: ApiTokenRecord = serde_json::from_str(json)
                    .map_err(|error| BenchError(format!("cannot decode a record: {error}")))?;
                accepted += usize::from(record.accepts(presented, now));
            }
            if accepted != sample.texts.len() {
                return Err(BenchError(
                    "the sample tokens did not all check in process".into(),
                ));
            }
            batches += 1;
        }
        let cpu = thread_cpu_time()
            .zip(started_cpu)
            .map_or_else(|| started.elapsed(), |(end, start)| end - start);
        Ok(ParseCeiling {
            tokens: sample.texts.len(),
            batches,
            micros_per_batch: cpu.as_secs_f64() * 1e6 / batches.max(1) as f64,
        })
    })
    .await
}

/// Runs `work` on a thread of its own, pinned to `cpu` if given (a fresh
/// thread, so no pooled thread of the runtime keeps the pin), and awaits
/// its answer without blocking the runtime.
async fn on_own_thread<T: Send + 'static>(
    cpu: Option<usize>,
    work: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
) -> Result<T, BenchError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sigil-bench-ceiling".into())
        .spawn(move || {
            let result = match cpu {
                Some(cpu) => pin::pin_this_thread(cpu).map_err(BenchError),
                None => Ok(()),
            }
            .and_then(|()| work());
            let _ = answer.send(result);
        })
        .map_err(|error| BenchError(format!("cannot start a ceiling thread: {error}")))?;
    answered
        .await
        .map_err(|_| BenchError("a ceiling thread died".into()))?
}

/// Writes `sample`'s records under keys of sigil-bench's own at `url`, then
/// measures `MGET` of all of them, one call at a time, for `time`.
pub async fn raw_mget(
    url: &str,
    sample: &SampleTokens,
    time: Duration,
) -> Result<MgetCeiling, BenchError> {
    let fail = |error: redis::RedisError| {
        BenchError(format!("the MGET ceiling failed: {}", error.category()))
    };
    let client = redis::Client::open(url).map_err(fail)?;
    let mut connection = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| BenchError("Redis did not accept a connection within 5s".into()))?
    .map_err(fail)?;
    let keys: Vec<String> = (0..sample.records.len())
        .map(|index| format!("{MGET_KEY_PREFIX}{index}"))
        .collect();
    let mut pipeline = redis::pipe();
    for (key, record) in keys.iter().zip(&sample.records) {
        pipeline.set(key, record).ignore();
    }
    pipeline
        .query_async::<()>(&mut connection)
        .await
        .map_err(fail)?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|error| BenchError(format!("histogram: {error}")))?;
    let started = Instant::now();
    let mut total = Duration::ZERO;
    while started.elapsed() < time && latency.len() < MAX_MGET_CALLS {
        let call = Instant::now();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .map_err(fail)?;
        let took = call.elapsed();
        if values.iter().any(Option::is_none) {
            return Err(BenchError("the MGET ceiling's keys vanished".into()));
        }
        total += took;
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }
    Ok(MgetCeiling {
        keys: keys.len(),
        value_bytes: sample.records.first().map_or(0, String::len),
        calls: latency.len(),
        p50_micros: latency.value_at_quantile(0.50),
        p99_micros: latency.value_at_quantile(0.99),
        mean_micros: total.as_secs_f64() * 1e6 / latency.len().max(1) as f64,
    })
}

/// The JWKS key that signed `jwts`, fetched from the Sigil at `endpoint`.
async fn jwks_key(endpoint: &str, jwts: &[String]) -> Result<DecodingKey, BenchError> {
    let kid = jwts
        .first()
        .and_then(|jwt| decode_header(jwt).ok()?.kid)
        .ok_or_else(|| BenchError("a minted JWT has no kid".into()))?;
    let channel = connect(endpoint, 1)
        .await?
        .pop()
        .ok_or_else(|| BenchError("no connection for GetJwks".into()))?;
    let jwks = Clients::new(channel)
        .issuer
        .get_jwks(pb::GetJwksRequest {})
        .await
        .map_err(|status| BenchError(format!("GetJwks failed: {:?}", status.code())))?
        .into_inner();
    let jwk = jwks
        .keys
        .iter()
        .filter_map(jwk_from_pb)
        .find(|jwk| jwk.common.key_id.as_deref() == Some(kid.as_str()))
        .ok_or_else(|| BenchError(format!("the JWKS has no key {kid}")))?;
    DecodingKey::from_jwk(&jwk).map_err(|error| BenchError(format!("bad JWK {kid}: {error}")))
}

/// `jwts`' claims and kids, signed again with HS256 under a fresh secret,
/// and the key that verifies them.
fn resigned_hs256(jwts: &[String]) -> Result<(Vec<String>, DecodingKey), BenchError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|error| BenchError(format!("no randomness for an HS256 secret: {error}")))?;
    let encoding = EncodingKey::from_secret(&secret);
    let tokens = jwts
        .iter()
        .map(|jwt| {
            let header =
                decode_header(jwt).map_err(|error| BenchError(format!("bad JWT: {error}")))?;
            let claims: Map<String, Value> = jwt
                .split('.')
                .nth(1)
                .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
                .and_then(|json| serde_json::from_slice(&json).ok())
                .ok_or_else(|| BenchError("a minted JWT has no readable claims".into()))?;
            let mut resigned = Header::new(JwtAlgorithm::HS256);
            resigned.kid = header.kid;
            encode(&resigned, &claims, &encoding)
                .map_err(|error| BenchError(format!("cannot sign with HS256: {error}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((tokens, DecodingKey::from_secret(&secret)))
}

fn jwt_algorithm(algorithm: Algorithm) -> JwtAlgorithm {
    match algorithm {
        Algorithm::EdDsa => JwtAlgorithm::EdDSA,
        Algorithm::Es256 => JwtAlgorithm::ES256,
        Algorithm::Rs256 => JwtAlgorithm::RS256,
        Algorithm::Hs256 => JwtAlgorithm::HS256,
    }
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat`
/// (nanoseconds on CPU): finer than the 10 ms ticks of `stat`.
fn thread_cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    Timestamp::from_unix_ms(i64::try_from(millis).unwrap_or(i64::MAX))
}
