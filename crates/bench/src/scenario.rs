//! What a run asks: the scenarios a user names, and the workloads (one per
//! scenario plus the baseline's two) that make one call at a time. Each
//! workload is a small module; a new RPC (VerifyToken, ValidateTokens) is a
//! new variant and a new module.

mod baseline_calls;
mod check_access;
mod create_authorize;
mod create_revoke;
mod mixed;
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
    baseline::pb::baseline_service_client::BaselineServiceClient, rng::FastRng,
    sessions::SessionPool,
};

pub use baseline_calls::{Echo, RedisGet};
pub use check_access::CheckAccess;
pub use create_authorize::CreateAuthorize;
pub use mixed::Mixed;
pub use whoami::WhoAmI;

/// A Sigil scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// WhoAmI with tokens drawn at random from the pre-created sessions.
    #[value(name = "whoami")]
    #[serde(rename = "whoami")]
    WhoAmI,
    /// CheckAccess: permission hits, glob-rule hits, rule and no-rule misses.
    CheckAccess,
    /// CreateSession then AuthorizeSession, counted as one operation.
    CreateAuthorize,
    /// 90 % WhoAmI, 9 % CheckAccess, 1 % CreateSession + RevokeSession.
    Mixed,
}

impl Scenario {
    /// Every Sigil scenario, in the order a default run takes.
    pub const SIGIL: [Scenario; 4] = [
        Scenario::WhoAmI,
        Scenario::CheckAccess,
        Scenario::CreateAuthorize,
        Scenario::Mixed,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::WhoAmI => "whoami",
            Scenario::CheckAccess => "check-access",
            Scenario::CreateAuthorize => "create-authorize",
            Scenario::Mixed => "mixed",
        }
    }

    /// Whether it draws on the pre-created sessions.
    pub fn needs_sessions(self) -> bool {
        !matches!(self, Scenario::CreateAuthorize)
    }
}

/// One kind of call, ready to be made again and again.
pub enum Workload {
    /// The baseline's empty echo.
    Echo(Echo),
    /// The baseline's one Redis GET.
    RedisGet(RedisGet),
    /// See [`Scenario::WhoAmI`].
    WhoAmI(WhoAmI),
    /// See [`Scenario::CheckAccess`].
    CheckAccess(CheckAccess),
    /// See [`Scenario::CreateAuthorize`].
    CreateAuthorize(CreateAuthorize),
    /// See [`Scenario::Mixed`].
    Mixed(Mixed),
}

impl Workload {
    /// The workload of `scenario` over `sessions`.
    pub fn of(scenario: Scenario, sessions: &SessionPool, admin: &AdminBearer) -> Workload {
        match scenario {
            Scenario::WhoAmI => Workload::WhoAmI(WhoAmI::new(sessions.clone())),
            Scenario::CheckAccess => Workload::CheckAccess(CheckAccess::new(sessions.clone())),
            Scenario::CreateAuthorize => {
                Workload::CreateAuthorize(CreateAuthorize::new(admin.clone()))
            }
            Scenario::Mixed => Workload::Mixed(Mixed::new(sessions.clone(), admin.clone())),
        }
    }

    /// Makes one call (or, for two-step operations, one operation).
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        match self {
            Workload::Echo(echo) => echo.call(clients).await,
            Workload::RedisGet(get) => get.call(clients).await,
            Workload::WhoAmI(whoami) => whoami.call(clients, rng).await,
            Workload::CheckAccess(check) => check.call(clients, rng).await,
            Workload::CreateAuthorize(create) => create.call(clients).await,
            Workload::Mixed(mixed) => mixed.call(clients, rng).await,
        }
    }
}

/// Clients of every service, over one connection.
pub struct Clients {
    /// `sigil.v1.IssuerService`.
    pub issuer: pb::issuer_service_client::IssuerServiceClient<Channel>,
    /// `sigil.v1.ValidatorService`.
    pub validator: pb::validator_service_client::ValidatorServiceClient<Channel>,
    /// `sigil_bench.v1.BaselineService`.
    pub baseline: BaselineServiceClient<Channel>,
}

impl Clients {
    /// Clients sharing `channel`.
    pub fn new(channel: Channel) -> Clients {
        Clients {
            issuer: pb::issuer_service_client::IssuerServiceClient::new(channel.clone()),
            validator: pb::validator_service_client::ValidatorServiceClient::new(channel.clone()),
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
