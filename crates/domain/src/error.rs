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
    /// A nonce is unknown, already used, or expired.
    #[error("nonce not found")]
    NonceNotFound,
    /// No session has this id (any more).
    #[error("session not found")]
    SessionNotFound,
    /// The session is not in a state that allows the call.
    #[error("session is not active")]
    SessionNotActive,
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
    /// An HTTP request's content type is not JSON (HTTP only).
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// An HTTP request used a method the route does not answer (HTTP only).
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// Result of a request-path operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidField`] for `field`.
    pub fn invalid(field: impl Into<FieldPath>, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
