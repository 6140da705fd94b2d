//! The one place where a domain error becomes a gRPC status: its code, a
//! `google.rpc.ErrorInfo` with a stable reason, and for bad input a
//! `google.rpc.BadRequest` naming the field. Clients branch on the reason,
//! never on the message.

use sigil_domain::{Error, TokenRejection};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every Sigil error.
pub const ERROR_DOMAIN: &str = "sigil";

/// The gRPC status for `error`.
pub fn to_status(error: Error) -> Status {
    let (code, reason) = classify(&error);
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []);
    if let Error::InvalidField { field, reason } = &error {
        details.add_bad_request_violation(field.as_str(), reason.as_str());
    }
    if let Error::RateLimited { retry_after } = &error {
        details.set_retry_info(Some(*retry_after));
    }
    log_cause(&error);
    Status::with_error_details(code, error.to_string(), details)
}

/// What the single call would have answered for `error`, as one entry of a
/// batch answer: the same code and reason as [`to_status`].
pub fn to_batch_error(error: &Error) -> crate::v1::BatchError {
    let (code, reason) = classify(error);
    log_cause(error);
    crate::v1::BatchError {
        code: i32::from(code),
        reason: reason.to_owned(),
        message: error.to_string(),
    }
}

/// Logs the cause of a store error, which is for operators only and never
/// sent. Every answer made from an `Error` calls it, gRPC or HTTP.
pub fn log_cause(error: &Error) {
    match error {
        Error::Unavailable(cause) => tracing::warn!(error = %cause, "store unavailable"),
        Error::CorruptRecord(cause) => tracing::error!(error = %cause, "corrupt record in store"),
        _ => {}
    }
}

/// The gRPC code and the stable `ErrorInfo.reason` of `error`.
pub fn classify(error: &Error) -> (Code, &'static str) {
    match error {
        Error::InvalidField { .. } => (Code::InvalidArgument, "INVALID_FIELD"),
        Error::RequestTooLarge { .. } => (Code::ResourceExhausted, "REQUEST_TOO_LARGE"),
        Error::Overloaded => (Code::ResourceExhausted, "OVERLOADED"),
        Error::RateLimited { .. } => (Code::ResourceExhausted, "RATE_LIMITED"),
        Error::DeadlineExceeded => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        Error::BatchTooLarge { .. } => (Code::ResourceExhausted, "BATCH_TOO_LARGE"),
        Error::PendingSessionsFull { .. } => (Code::ResourceExhausted, "PENDING_SESSIONS_FULL"),
        Error::AdminKeyMissing => (Code::Unauthenticated, "ADMIN_KEY_MISSING"),
        Error::AdminKeyInvalid => (Code::Unauthenticated, "ADMIN_KEY_INVALID"),
        Error::SessionInvalid => (Code::Unauthenticated, "SESSION_INVALID"),
        Error::SessionAal2Required => (Code::PermissionDenied, "SESSION_AAL2_REQUIRED"),
        Error::NonceNotFound => (Code::NotFound, "NONCE_NOT_FOUND"),
        Error::SessionNotFound => (Code::NotFound, "SESSION_NOT_FOUND"),
        Error::SessionNotActive => (Code::FailedPrecondition, "SESSION_NOT_ACTIVE"),
        Error::TokenRejected(rejection) => (Code::Unauthenticated, token_reason(*rejection)),
        Error::TemplateNotFound => (Code::NotFound, "TEMPLATE_NOT_FOUND"),
        Error::JwtNotConfigured => (Code::FailedPrecondition, "JWT_NOT_CONFIGURED"),
        Error::Conflict => (Code::Aborted, "CONCURRENT_UPDATE"),
        Error::Unavailable(_) => (Code::Unavailable, "STORE_UNAVAILABLE"),
        Error::CorruptRecord(_) => (Code::Internal, "CORRUPT_RECORD"),
        Error::ApiTokenNotFound => (Code::NotFound, "API_TOKEN_NOT_FOUND"),
        Error::EventCursorExpired => (Code::OutOfRange, "EVENT_CURSOR_EXPIRED"),
        Error::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        // HTTP-only refusals; their gRPC codes are for completeness.
        Error::UnsupportedMediaType => (Code::InvalidArgument, "UNSUPPORTED_MEDIA_TYPE"),
        Error::MethodNotAllowed => (Code::Unimplemented, "METHOD_NOT_ALLOWED"),
    }
}

/// The HTTP status for `error`, from the same classification as its gRPC
/// status, for Sigil's HTTP/JSON routes.
pub fn http_status(error: &Error) -> http::StatusCode {
    use http::StatusCode;
    match error {
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => match classify(error).0 {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

fn token_reason(rejection: TokenRejection) -> &'static str {
    match rejection {
        TokenRejection::Malformed => "TOKEN_MALFORMED",
        TokenRejection::UnknownKey => "TOKEN_UNKNOWN_KEY",
        TokenRejection::BadSignature => "TOKEN_BAD_SIGNATURE",
        TokenRejection::Expired => "TOKEN_EXPIRED",
        TokenRejection::NotYetValid => "TOKEN_NOT_YET_VALID",
        TokenRejection::WrongAudience => "TOKEN_WRONG_AUDIENCE",
        TokenRejection::WrongIssuer => "TOKEN_WRONG_ISSUER",
        TokenRejection::Replayed => "TOKEN_REPLAYED",
        TokenRejection::SessionInactive => "TOKEN_SESSION_INACTIVE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_field_names_the_field_in_bad_request() {
        let status = to_status(Error::invalid(
            "rules[1].resource",
            "must be 1 to 256 characters",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_FIELD");
        assert_eq!(info.domain, ERROR_DOMAIN);
        let bad_request = status.get_details_bad_request().expect("bad request");
        assert_eq!(bad_request.field_violations[0].field, "rules[1].resource");
    }

    #[test]
    fn http_statuses_follow_the_same_map() {
        let check =
            |error: Error, expected: u16| assert_eq!(http_status(&error).as_u16(), expected);
        check(Error::invalid("tokens", "must be a list"), 400);
        check(Error::RequestTooLarge { limit_bytes: 1 }, 413);
        check(Error::UnsupportedMediaType, 415);
        check(Error::MethodNotAllowed, 405);
        check(Error::Unavailable("down".into()), 503);
        check(Error::ApiTokenNotFound, 404);
    }

    #[test]
    fn unavailable_store_never_leaks_its_cause() {
        let status = to_status(Error::Unavailable("redis://:hunter2@host refused".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("hunter2"));
    }
}
