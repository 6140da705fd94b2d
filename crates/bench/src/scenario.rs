//! What a run asks: the scenarios a user names, and the workloads (one per
//! scenario plus the baseline's two) that make one call at a time. Each
//! workload is a small module; a new RPC (VerifyToken, ValidateTokens) is a
//! new variant and a new module.

mod baseline_calls;
mod batch_verify;
mod batch_whoami;
mod check_access;
mod create_authorize;
mod create_revoke;
mod edge_validate;
mod get_token;
mod mixed;
mod validate_tokens;
mod verify_token;
mod whoami;

use clap::ValueEnum;
use serde::Serialize;
use sigil_proto::v1 as pb;
use tonic::{
    Code, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::Channel,
};

use crate::{
    BenchError,
    api_tokens::{self, ApiTokenBatch},
    baseline::pb::baseline_service_client::BaselineServiceClient,
    jwts::{self, Algorithm, JwtPool},
    rng::FastRng,
    sessions::SessionPool,
};

pub use baseline_calls::{Echo, RedisGet};
pub use batch_verify::BatchVerifyTokens;
pub use batch_whoami::BatchWhoAmI;
pub use check_access::CheckAccess;
pub use create_authorize::CreateAuthorize;
pub use edge_validate::EdgeValidate;
pub use get_token::GetToken;
pub use mixed::Mixed;
pub use validate_tokens::ValidateTokens;
pub use verify_token::{VerifyMode, VerifyToken};
pub use whoami::WhoAmI;

/// A Sigil scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// WhoAmI with tokens drawn at random from the pre-created sessions.
    #[value(name = "whoami")]
    #[serde(rename = "whoami")]
    WhoAmI,
    /// BatchWhoAmI of 100 tokens drawn at random from the pre-created
    /// sessions: one store round trip for the whole batch.
    #[value(name = "batch-whoami-100")]
    #[serde(rename = "batch-whoami-100")]
    BatchWhoAmI100,
    /// CheckAccess: permission hits, glob-rule hits, rule and no-rule misses.
    CheckAccess,
    /// CreateSession then AuthorizeSession, counted as one operation.
    CreateAuthorize,
    /// VerifyToken of EdDSA JWTs, signature and claims only.
    VerifyTokenEddsa,
    /// VerifyToken of EdDSA JWTs, with `check_session` (one store read).
    VerifyTokenEddsaCheckSession,
    /// VerifyToken of EdDSA JWTs, with `consume_jti`, each after a GetToken minting the token (counted as one).
    VerifyTokenEddsaConsumeJti,
    /// VerifyToken of ES256 JWTs, signature and claims only.
    VerifyTokenEs256,
    /// VerifyToken of ES256 JWTs, with `check_session` (one store read).
    VerifyTokenEs256CheckSession,
    /// VerifyToken of ES256 JWTs, with `consume_jti`, each after a GetToken minting the token (counted as one).
    VerifyTokenEs256ConsumeJti,
    /// VerifyToken of RS256 JWTs, signature and claims only.
    VerifyTokenRs256,
    /// VerifyToken of RS256 JWTs, with `check_session` (one store read).
    VerifyTokenRs256CheckSession,
    /// VerifyToken of RS256 JWTs, with `consume_jti`, each after a GetToken minting the token (counted as one).
    VerifyTokenRs256ConsumeJti,
    /// VerifyToken of HS256 JWTs, signature and claims only.
    VerifyTokenHs256,
    /// VerifyToken of HS256 JWTs, with `check_session` (one store read).
    VerifyTokenHs256CheckSession,
    /// VerifyToken of HS256 JWTs, with `consume_jti`, each after a GetToken minting the token (counted as one).
    VerifyTokenHs256ConsumeJti,
    /// BatchVerifyTokens of 100 EdDSA JWTs drawn at random from those
    /// minted, signature and claims only.
    #[value(name = "batch-verify-tokens-100")]
    #[serde(rename = "batch-verify-tokens-100")]
    BatchVerifyTokens100,
    /// GetToken by session key, EdDSA template.
    GetToken,
    /// EdgeTokenService/ValidateTokens over gRPC with 1 valid token per call.
    #[value(name = "validate-tokens-1")]
    #[serde(rename = "validate-tokens-1")]
    ValidateTokens1,
    /// EdgeTokenService/ValidateTokens over gRPC with 10 valid tokens per call.
    #[value(name = "validate-tokens-10")]
    #[serde(rename = "validate-tokens-10")]
    ValidateTokens10,
    /// EdgeTokenService/ValidateTokens over gRPC with 100 valid tokens per call.
    #[value(name = "validate-tokens-100")]
    #[serde(rename = "validate-tokens-100")]
    ValidateTokens100,
    /// EdgeTokenService/ValidateTokens over gRPC with 1000 valid tokens per call.
    #[value(name = "validate-tokens-1000")]
    #[serde(rename = "validate-tokens-1000")]
    ValidateTokens1000,
    /// ValidateTokens with 1000 valid tokens, one call in flight over one
    /// connection: the latency of a batch alone, for issue 8's bound of 2 ×
    /// (raw MGET of 1000 keys + in-process parsing).
    #[value(name = "validate-tokens-1000-alone")]
    #[serde(rename = "validate-tokens-1000-alone")]
    ValidateTokens1000Alone,
    /// `POST /edge/validate` over HTTP/1.1 with 1 valid token per call.
    #[value(name = "edge-validate-1")]
    #[serde(rename = "edge-validate-1")]
    EdgeValidate1,
    /// `POST /edge/validate` over HTTP/1.1 with 10 valid tokens per call.
    #[value(name = "edge-validate-10")]
    #[serde(rename = "edge-validate-10")]
    EdgeValidate10,
    /// `POST /edge/validate` over HTTP/1.1 with 100 valid tokens per call.
    #[value(name = "edge-validate-100")]
    #[serde(rename = "edge-validate-100")]
    EdgeValidate100,
    /// `POST /edge/validate` over HTTP/1.1 with 1000 valid tokens per call.
    #[value(name = "edge-validate-1000")]
    #[serde(rename = "edge-validate-1000")]
    EdgeValidate1000,
    /// 45 % WhoAmI, 45 % VerifyToken (EdDSA), 9 % ValidateTokens of 10
    /// tokens, 1 % CreateSession + RevokeSession.
    Mixed,
}

impl Scenario {
    /// Every Sigil scenario, in the order a default run takes.
    pub const SIGIL: [Scenario; 28] = [
        Scenario::WhoAmI,
        Scenario::BatchWhoAmI100,
        Scenario::CheckAccess,
        Scenario::CreateAuthorize,
        Scenario::VerifyTokenEddsa,
        Scenario::VerifyTokenEddsaCheckSession,
        Scenario::VerifyTokenEddsaConsumeJti,
        Scenario::VerifyTokenEs256,
        Scenario::VerifyTokenEs256CheckSession,
        Scenario::VerifyTokenEs256ConsumeJti,
        Scenario::VerifyTokenRs256,
        Scenario::VerifyTokenRs256CheckSession,
        Scenario::VerifyTokenRs256ConsumeJti,
        Scenario::VerifyTokenHs256,
        Scenario::VerifyTokenHs256CheckSession,
        Scenario::VerifyTokenHs256ConsumeJti,
        Scenario::BatchVerifyTokens100,
        Scenario::GetToken,
        Scenario::ValidateTokens1,
        Scenario::ValidateTokens10,
        Scenario::ValidateTokens100,
        Scenario::ValidateTokens1000,
        Scenario::ValidateTokens1000Alone,
        Scenario::EdgeValidate1,
        Scenario::EdgeValidate10,
        Scenario::EdgeValidate100,
        Scenario::EdgeValidate1000,
        Scenario::Mixed,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::WhoAmI => "whoami",
            Scenario::BatchWhoAmI100 => "batch-whoami-100",
            Scenario::CheckAccess => "check-access",
            Scenario::CreateAuthorize => "create-authorize",
            Scenario::VerifyTokenEddsa => "verify-token-eddsa",
            Scenario::VerifyTokenEddsaCheckSession => "verify-token-eddsa-check-session",
            Scenario::VerifyTokenEddsaConsumeJti => "verify-token-eddsa-consume-jti",
            Scenario::VerifyTokenEs256 => "verify-token-es256",
            Scenario::VerifyTokenEs256CheckSession => "verify-token-es256-check-session",
            Scenario::VerifyTokenEs256ConsumeJti => "verify-token-es256-consume-jti",
            Scenario::VerifyTokenRs256 => "verify-token-rs256",
            Scenario::VerifyTokenRs256CheckSession => "verify-token-rs256-check-session",
            Scenario::VerifyTokenRs256ConsumeJti => "verify-token-rs256-consume-jti",
            Scenario::VerifyTokenHs256 => "verify-token-hs256",
            Scenario::VerifyTokenHs256CheckSession => "verify-token-hs256-check-session",
            Scenario::VerifyTokenHs256ConsumeJti => "verify-token-hs256-consume-jti",
            Scenario::BatchVerifyTokens100 => "batch-verify-tokens-100",
            Scenario::GetToken => "get-token",
            Scenario::ValidateTokens1 => "validate-tokens-1",
            Scenario::ValidateTokens10 => "validate-tokens-10",
            Scenario::ValidateTokens100 => "validate-tokens-100",
            Scenario::ValidateTokens1000 => "validate-tokens-1000",
            Scenario::ValidateTokens1000Alone => "validate-tokens-1000-alone",
            Scenario::EdgeValidate1 => "edge-validate-1",
            Scenario::EdgeValidate10 => "edge-validate-10",
            Scenario::EdgeValidate100 => "edge-validate-100",
            Scenario::EdgeValidate1000 => "edge-validate-1000",
            Scenario::Mixed => "mixed",
        }
    }

    /// The template and checks of a VerifyToken scenario; `None` for the
    /// others.
    pub fn verification(self) -> Option<(Algorithm, VerifyMode)> {
        match self {
            Scenario::VerifyTokenEddsa => Some((Algorithm::EdDsa, VerifyMode::SignatureOnly)),
            Scenario::VerifyTokenEddsaCheckSession => {
                Some((Algorithm::EdDsa, VerifyMode::CheckSession))
            }
            Scenario::VerifyTokenEddsaConsumeJti => {
                Some((Algorithm::EdDsa, VerifyMode::ConsumeJti))
            }
            Scenario::VerifyTokenEs256 => Some((Algorithm::Es256, VerifyMode::SignatureOnly)),
            Scenario::VerifyTokenEs256CheckSession => {
                Some((Algorithm::Es256, VerifyMode::CheckSession))
            }
            Scenario::VerifyTokenEs256ConsumeJti => {
                Some((Algorithm::Es256, VerifyMode::ConsumeJti))
            }
            Scenario::VerifyTokenRs256 => Some((Algorithm::Rs256, VerifyMode::SignatureOnly)),
            Scenario::VerifyTokenRs256CheckSession => {
                Some((Algorithm::Rs256, VerifyMode::CheckSession))
            }
            Scenario::VerifyTokenRs256ConsumeJti => {
                Some((Algorithm::Rs256, VerifyMode::ConsumeJti))
            }
            Scenario::VerifyTokenHs256 => Some((Algorithm::Hs256, VerifyMode::SignatureOnly)),
            Scenario::VerifyTokenHs256CheckSession => {
                Some((Algorithm::Hs256, VerifyMode::CheckSession))
            }
            Scenario::VerifyTokenHs256ConsumeJti => {
                Some((Algorithm::Hs256, VerifyMode::ConsumeJti))
            }
            _ => None,
        }
    }

    /// How a validation scenario sends its tokens, and how many per call;
    /// `None` for the others.
    pub fn validation(self) -> Option<(Transport, usize)> {
        match self {
            Scenario::ValidateTokens1 => Some((Transport::Grpc, 1)),
            Scenario::ValidateTokens10 => Some((Transport::Grpc, 10)),
            Scenario::ValidateTokens100 => Some((Transport::Grpc, 100)),
            Scenario::ValidateTokens1000 | Scenario::ValidateTokens1000Alone => {
                Some((Transport::Grpc, 1000))
            }
            Scenario::EdgeValidate1 => Some((Transport::Http, 1)),
            Scenario::EdgeValidate10 => Some((Transport::Http, 10)),
            Scenario::EdgeValidate100 => Some((Transport::Http, 100)),
            Scenario::EdgeValidate1000 => Some((Transport::Http, 1000)),
            _ => None,
        }
    }

    /// Calls in flight (over as many connections) when the scenario fixes
    /// them rather than taking `--concurrency`.
    pub fn fixed_in_flight(self) -> Option<usize> {
        match self {
            Scenario::ValidateTokens1000Alone => Some(1),
            _ => None,
        }
    }

    /// Whether a call reads the store: the ceiling of one that does not is
    /// the empty echo, even over Redis.
    pub fn reads_store(self) -> bool {
        match self {
            Scenario::BatchVerifyTokens100 => false,
            other => other
                .verification()
                .is_none_or(|(_, mode)| mode != VerifyMode::SignatureOnly),
        }
    }

    /// Whether it draws on the pre-created sessions.
    pub fn needs_sessions(self) -> bool {
        !matches!(self, Scenario::CreateAuthorize) && self.validation().is_none()
    }
}

/// How API tokens reach the edge-token service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// EdgeTokenService/ValidateTokens.
    Grpc,
    /// `POST /edge/validate`, JSON over HTTP/1.1.
    Http,
}

/// One kind of call, ready to be made again and again.
pub enum Workload {
    /// The baseline's empty echo.
    Echo(Echo),
    /// The baseline's one Redis GET.
    RedisGet(RedisGet),
    /// See [`Scenario::WhoAmI`].
    WhoAmI(WhoAmI),
    /// See [`Scenario::BatchWhoAmI100`].
    BatchWhoAmI(BatchWhoAmI),
    /// See [`Scenario::CheckAccess`].
    CheckAccess(CheckAccess),
    /// See [`Scenario::CreateAuthorize`].
    CreateAuthorize(CreateAuthorize),
    /// See [`Scenario::Mixed`].
    Mixed(Mixed),
    /// See [`Scenario::VerifyTokenEddsa`] and its siblings.
    VerifyToken(VerifyToken),
    /// See [`Scenario::BatchVerifyTokens100`].
    BatchVerifyTokens(BatchVerifyTokens),
    /// See [`Scenario::GetToken`].
    GetToken(GetToken),
    /// See [`Scenario::ValidateTokens1`] and its siblings.
    ValidateTokens(ValidateTokens),
    /// See [`Scenario::EdgeValidate1`] and its siblings; boxed, as the
    /// HTTP client is far larger than the other workloads.
    EdgeValidate(Box<EdgeValidate>),
}

/// What preparing a workload may need: the Sigil, its sessions, the admin
/// key.
#[derive(Clone, Copy)]
pub struct Setup<'a> {
    /// The Sigil measured, `http://127.0.0.1:<port>`.
    pub endpoint: &'a str,
    /// Its pre-created active sessions.
    pub sessions: &'a SessionPool,
    /// Its admin key.
    pub admin: &'a AdminBearer,
    /// Calls in flight: HTTP/1.1 needs a connection for each.
    pub concurrency: usize,
    /// Live API tokens made before the scenarios (`--api-tokens`), which
    /// validation scenarios draw their batches from; without them each
    /// creates its own batch.
    pub api_tokens: Option<&'a ApiTokenBatch>,
}

impl Workload {
    /// The workload of `scenario`, after any setup it needs at the Sigil
    /// (templates put, JWTs minted).
    pub async fn prepare(scenario: Scenario, setup: &Setup<'_>) -> Result<Workload, BenchError> {
        let Setup {
            endpoint,
            sessions,
            admin,
            concurrency,
            api_tokens: pool,
        } = *setup;
        Ok(match scenario {
            Scenario::WhoAmI => Workload::WhoAmI(WhoAmI::new(sessions.clone())),
            Scenario::BatchWhoAmI100 => {
                Workload::BatchWhoAmI(BatchWhoAmI::new(sessions.clone(), 100))
            }
            Scenario::CheckAccess => Workload::CheckAccess(CheckAccess::new(sessions.clone())),
            Scenario::CreateAuthorize => {
                Workload::CreateAuthorize(CreateAuthorize::new(admin.clone()))
            }
            Scenario::Mixed => {
                let jwts =
                    jwts::mint_pool(endpoint, admin, sessions, mixed::MIXED_JWT_ALGORITHM).await?;
                let api_tokens =
                    api_tokens::create_batch(endpoint, admin, mixed::MIXED_VALIDATE_BATCH).await?;
                Workload::Mixed(Mixed::new(
                    sessions.clone(),
                    jwts,
                    api_tokens,
                    admin.clone(),
                ))
            }
            Scenario::BatchVerifyTokens100 => {
                let jwts = jwts::mint_pool(endpoint, admin, sessions, Algorithm::EdDsa).await?;
                Workload::BatchVerifyTokens(BatchVerifyTokens::new(jwts, 100))
            }
            Scenario::GetToken => {
                jwts::put_template_at(endpoint, admin, GetToken::ALGORITHM).await?;
                Workload::GetToken(GetToken::new(sessions.clone()))
            }
            other => {
                if let Some((algorithm, mode)) = other.verification() {
                    let jwts = jwts::mint_pool(endpoint, admin, sessions, algorithm).await?;
                    Workload::VerifyToken(VerifyToken::new(algorithm, mode, jwts, sessions.clone()))
                } else if let Some((transport, size)) = other.validation() {
                    let batch = match pool {
                        Some(pool) if pool.len() >= size => pool.clone(),
                        Some(pool) => {
                            return Err(BenchError(format!(
                                "{} needs --api-tokens of at least {size}, not {}",
                                other.name(),
                                pool.len()
                            )));
                        }
                        None => api_tokens::create_batch(endpoint, admin, size).await?,
                    };
                    match transport {
                        Transport::Grpc => {
                            Workload::ValidateTokens(ValidateTokens::new(batch, size))
                        }
                        // One fixed body: the first `size` tokens.
                        Transport::Http => Workload::EdgeValidate(Box::new(EdgeValidate::new(
                            endpoint,
                            &batch.first(size),
                            concurrency,
                        )?)),
                    }
                } else {
                    return Err(BenchError(format!("{} has no workload", other.name())));
                }
            }
        })
    }

    /// The algorithm and JWTs a JWT workload sends, for the raw verify
    /// ceiling; `None` for the others.
    pub fn jwt_sample(&self) -> Option<(Algorithm, &JwtPool)> {
        match self {
            Workload::VerifyToken(verify) => Some(verify.sample()),
            Workload::BatchVerifyTokens(batch) => Some((Algorithm::EdDsa, batch.jwts())),
            _ => None,
        }
    }

    /// Makes one call (or, for two-step operations, one operation).
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        match self {
            Workload::Echo(echo) => echo.call(clients).await,
            Workload::RedisGet(get) => get.call(clients).await,
            Workload::WhoAmI(whoami) => whoami.call(clients, rng).await,
            Workload::BatchWhoAmI(batch) => batch.call(clients, rng).await,
            Workload::CheckAccess(check) => check.call(clients, rng).await,
            Workload::CreateAuthorize(create) => create.call(clients).await,
            Workload::Mixed(mixed) => mixed.call(clients, rng).await,
            Workload::VerifyToken(verify) => verify.call(clients, rng).await,
            Workload::BatchVerifyTokens(batch) => batch.call(clients, rng).await,
            Workload::GetToken(get) => get.call(clients, rng).await,
            Workload::ValidateTokens(validate) => validate.call(clients, rng).await,
            Workload::EdgeValidate(validate) => validate.call().await,
        }
    }
}

/// Clients of every service, over one connection.
pub struct Clients {
    /// `sigil.v1.IssuerService`.
    pub issuer: pb::issuer_service_client::IssuerServiceClient<Channel>,
    /// `sigil.v1.ValidatorService`.
    pub validator: pb::validator_service_client::ValidatorServiceClient<Channel>,
    /// `sigil.v1.EdgeTokenService`.
    pub edge: pb::edge_token_service_client::EdgeTokenServiceClient<Channel>,
    /// `sigil_bench.v1.BaselineService`.
    pub baseline: BaselineServiceClient<Channel>,
}

impl Clients {
    /// Clients sharing `channel`.
    pub fn new(channel: Channel) -> Clients {
        Clients {
            issuer: pb::issuer_service_client::IssuerServiceClient::new(channel.clone()),
            validator: pb::validator_service_client::ValidatorServiceClient::new(channel.clone()),
            edge: pb::edge_token_service_client::EdgeTokenServiceClient::new(channel.clone()),
            baseline: BaselineServiceClient::new(channel),
        }
    }
}

/// Why a call did not count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// The server answered with this status.
    Status(Code),
    /// The server answered OK, but not what the scenario expects (a denied
    /// access that should be allowed, a session missing from a response).
    UnexpectedAnswer,
    /// No answer within `--request-timeout`.
    ClientTimeout,
    /// An HTTP call answered with this status rather than 200.
    HttpStatus(u16),
    /// An HTTP call failed below HTTP: connection refused or reset.
    HttpTransport,
}

impl From<Status> for CallFailure {
    fn from(status: Status) -> Self {
        CallFailure::Status(status.code())
    }
}

impl CallFailure {
    /// A stable UPPER_SNAKE name, as gRPC spells status codes.
    pub fn name(self) -> &'static str {
        match self {
            CallFailure::Status(code) => code_name(code),
            CallFailure::UnexpectedAnswer => "UNEXPECTED_ANSWER",
            CallFailure::ClientTimeout => "CLIENT_TIMEOUT",
            CallFailure::HttpStatus(400..=499) => "HTTP_4XX",
            CallFailure::HttpStatus(500..=599) => "HTTP_5XX",
            CallFailure::HttpStatus(_) => "HTTP_OTHER_STATUS",
            CallFailure::HttpTransport => "HTTP_TRANSPORT",
        }
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `authorization: Bearer <admin key>`, parsed once. Never printed.
#[derive(Clone)]
pub struct AdminBearer(AsciiMetadataValue);

impl AdminBearer {
    /// The header for `admin_key`; an error names the problem, not the key.
    pub fn new(admin_key: &str) -> Result<AdminBearer, String> {
        let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {admin_key}"))
            .map_err(|_| "the admin key must be visible ASCII".to_owned())?;
        value.set_sensitive(true);
        Ok(AdminBearer(value))
    }

    /// `message` with the admin key attached.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        request
    }
}

impl std::fmt::Debug for AdminBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminBearer([redacted])")
    }
}
