//! The one error type of every request path. `sigil_proto::status` maps each
//! variant to a gRPC status; nothing else does.

use crate::FieldPath;

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is malformed or out of bounds.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Where the field is, such as `rules[2].resource`.
        field: FieldPath,
        /// What is wrong with it, for a human; never echoes a secret.
        reason: String,
    },
    /// The request is larger than the configured limit.
    #[error("request larger than {limit_bytes} bytes")]
    RequestTooLarge {
        /// The limit in force.
        limit_bytes: usize,
    },
    /// Too many calls of this kind from this caller, or from everyone.
    #[error("rate limited, retry later")]
    RateLimited {
        /// When a retry may succeed.
        retry_after: std::time::Duration,
    },
    /// The process is handling as many calls as it may; try again shortly.
    #[error("overloaded, try again")]
    Overloaded,
    /// The call's deadline (the caller's or the server's) passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// As many sessions wait for their nonce as the store may hold: a
    /// flood of CreateSession cannot fill the store.
    #[error("too many pending sessions (at most {limit})")]
    PendingSessionsFull {
        /// The maximum in force.
        limit: usize,
    },
    /// A batch holds more entries than the configured maximum.
    #[error("batch of more than {limit} entries")]
    BatchTooLarge {
        /// The maximum in force.
        limit: usize,
    },
    /// An admin call came without an admin key.
    #[error("admin key required")]
    AdminKeyMissing,
    /// An admin call came with a key that is not configured.
    #[error("admin key not recognised")]
    AdminKeyInvalid,
    /// A session token is absent, malformed, unknown, pending, expired or
    /// revoked. Which one is deliberately not said.
    #[error("session token invalid")]
    SessionInvalid,
    /// The session is valid but its assurance level is below the one the
    /// call requires: the holder must step up to AAL2 (as Kratos'
    /// `session_aal2_required`).
    #[error("session must be at assurance level AAL2")]
    SessionAal2Required,
    /// A nonce is unknown, already used, or expired.
    #[error("nonce not found")]
    NonceNotFound,
    /// No session has this id (any more).
    #[error("session not found")]
    SessionNotFound,
    /// The session is not in a state that allows the call.
    #[error("session is not active")]
    SessionNotActive,
    /// A JWT was refused. Always UNAUTHENTICATED; the rejection says why in
    /// terms that help a caller, not an attacker.
    #[error("token rejected: {0}")]
    TokenRejected(TokenRejection),
    /// No token template has this name.
    #[error("token template not found")]
    TemplateNotFound,
    /// JWT calls need a master key, and none is configured.
    #[error("JWT support is not configured (no master key)")]
    JwtNotConfigured,
    /// Another writer changed the record at the same time, too often.
    #[error("concurrent update, try again")]
    Conflict,
    /// The store could not be reached or did not answer in time.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds something this version cannot read.
    #[error("stored record is corrupt")]
    CorruptRecord(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No API token has this id (any more): unknown, expired or revoked.
    #[error("API token not found")]
    ApiTokenNotFound,
    /// Events after this cursor are no longer retained (or the cursor is
    /// from before the store lost its state): the reader missed events and
    /// must start over, dropping whatever it derived from them.
    #[error("events after this cursor are no longer retained")]
    EventCursorExpired,
    /// The server is shutting down; a long-lived call ends with this so the
    /// client resumes elsewhere.
    #[error("server shutting down")]
    ShuttingDown,
    /// An HTTP request's content type is not JSON (HTTP only).
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// An HTTP request used a method the route does not answer (HTTP only).
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// Why a JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a well-formed JWT, or missing a claim Sigil requires.
    #[error("malformed")]
    Malformed,
    /// Signed by a key this cluster does not know (any more).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not match, or the algorithm is not the key's.
    #[error("bad signature")]
    BadSignature,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Before `nbf` or `iat`.
    #[error("not yet valid")]
    NotYetValid,
    /// `aud` does not hold the audience asked for.
    #[error("wrong audience")]
    WrongAudience,
    /// `iss` is not the template's issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Its `jti` was already consumed.
    #[error("replayed")]
    Replayed,
    /// Its session was revoked or has expired.
    #[error("session not active")]
    SessionInactive,
}

/// Result of a request-path operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The same error with a field path inside the message field `parent`
    /// (`name` becomes `template.name`).
    pub fn within(self, parent: &str) -> Self {
        match self {
            Error::InvalidField { field, reason } => Error::InvalidField {
                field: FieldPath::from(parent).child(field.as_str()),
                reason,
            },
            other => other,
        }
    }

    /// An [`Error::InvalidField`] for `field`.
    pub fn invalid(field: impl Into<FieldPath>, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
