//! What the JWT scenarios need before they measure: a token template per
//! algorithm, put with the admin key, and JWTs minted from it with GetToken
//! by the pre-created sessions.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use sigil_proto::v1 as pb;

use crate::{
    BenchError,
    load::connect,
    rng::FastRng,
    scenario::{AdminBearer, Clients},
    sessions::SessionPool,
};

/// JWTs minted per template before a scenario verifies them; calls draw
/// from them at random.
pub const MINTED_PER_TEMPLATE: usize = 1000;
/// How long minted JWTs live: the server's default maximum, so none expires
/// during a run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// One setup call taking longer than this ends the run.
const SETUP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The algorithms Sigil signs JWTs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Ed25519.
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSA 2048 PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// HMAC-SHA-256 with the template's shared secret.
    Hs256,
}

impl Algorithm {
    /// The name of the benchmark's template signing with this algorithm.
    pub fn template_name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "bench-eddsa",
            Algorithm::Es256 => "bench-es256",
            Algorithm::Rs256 => "bench-rs256",
            Algorithm::Hs256 => "bench-hs256",
        }
    }

    fn proto(self) -> pb::SigningAlgorithm {
        match self {
            Algorithm::EdDsa => pb::SigningAlgorithm::Eddsa,
            Algorithm::Es256 => pb::SigningAlgorithm::Es256,
            Algorithm::Rs256 => pb::SigningAlgorithm::Rs256,
            Algorithm::Hs256 => pb::SigningAlgorithm::Hs256,
        }
    }
}

/// Compact JWTs of one template, minted for active sessions. Never printed.
#[derive(Clone)]
pub struct JwtPool(Arc<[String]>);

impl JwtPool {
    /// A JWT chosen at random.
    pub fn pick(&self, rng: &mut FastRng) -> &str {
        &self.0[rng.below(self.0.len())]
    }

    /// Every JWT of the pool.
    pub fn all(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Debug for JwtPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtPool({} tokens [redacted])", self.0.len())
    }
}

/// Puts the template of `algorithm` (again, if it exists: putting is
/// idempotent) with `admin`.
pub async fn put_template(
    clients: &mut Clients,
    admin: &AdminBearer,
    algorithm: Algorithm,
) -> Result<(), BenchError> {
    let template = pb::TokenTemplate {
        name: algorithm.template_name().to_owned(),
        lifetime: Some(prost_types::Duration {
            seconds: TOKEN_LIFETIME.as_secs() as i64,
            nanos: 0,
        }),
        algorithm: algorithm.proto() as i32,
        ..Default::default()
    };
    let put = clients
        .issuer
        .put_token_template(admin.request(pb::PutTokenTemplateRequest {
            template: Some(template),
        }));
    within_deadline(put, "PutTokenTemplate").await?;
    Ok(())
}

/// Puts the template of `algorithm` at `endpoint`.
pub async fn put_template_at(
    endpoint: &str,
    admin: &AdminBearer,
    algorithm: Algorithm,
) -> Result<(), BenchError> {
    let mut clients = setup_clients(endpoint).await?;
    put_template(&mut clients, admin, algorithm).await
}

/// Clients over one connection of their own, for setup calls.
async fn setup_clients(endpoint: &str) -> Result<Clients, BenchError> {
    let channel = connect(endpoint, 1)
        .await?
        .pop()
        .ok_or_else(|| BenchError("no connection for setup calls".into()))?;
    Ok(Clients::new(channel))
}

/// Puts the template of `algorithm` at `endpoint` and mints
/// [`MINTED_PER_TEMPLATE`] JWTs from it, each for a session of `sessions`
/// (round robin).
pub async fn mint_pool(
    endpoint: &str,
    admin: &AdminBearer,
    sessions: &SessionPool,
    algorithm: Algorithm,
) -> Result<JwtPool, BenchError> {
    let mut clients = setup_clients(endpoint).await?;
    put_template(&mut clients, admin, algorithm).await?;
    let mut jwts = Vec::with_capacity(MINTED_PER_TEMPLATE);
    for index in 0..MINTED_PER_TEMPLATE {
        let minted = clients.issuer.get_token(pb::GetTokenRequest {
            session_token: sessions.nth(index).to_owned(),
            template: algorithm.template_name().to_owned(),
            ..Default::default()
        });
        jwts.push(within_deadline(minted, "GetToken").await?.jwt);
    }
    Ok(JwtPool(jwts.into()))
}

/// Awaits a setup call, giving up after [`SETUP_CALL_TIMEOUT`].
async fn within_deadline<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    name: &str,
) -> Result<T, BenchError> {
    match tokio::time::timeout(SETUP_CALL_TIMEOUT, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(BenchError(format!(
            "{name} failed during setup: {:?} {} (does the Sigil have a master key?)",
            status.code(),
            status.message()
        ))),
        Err(_) => Err(BenchError(format!(
            "{name} gave no answer within {} s during setup",
            SETUP_CALL_TIMEOUT.as_secs()
        ))),
    }
}
