//! `POST /edge/validate` with the exact JSON of Unleash's endpoint (and
//! the `environment` and `status` Unleash Edge adds), so Unleash tooling
//! can point at Sigil. Errors are JSON too, with the same reasons and from
//! the same map as gRPC (`sigil_proto::status`).

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    response::Response,
    routing::post,
};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use sigil_domain::{ApiTokenRecord, Error, Result};
use sigil_proto::status::{classify, http_status, log_cause};

use crate::EdgeTokens;

/// The route Unleash SDKs and Edge call.
pub const VALIDATE_PATH: &str = "/edge/validate";

/// The room a `/edge/validate` body takes before it is parsed: one token
/// per this many bytes. A token as Sigil issues it is about 85 bytes with
/// its quotes and comma, so real batches are counted a little high.
const BODY_BYTES_PER_TOKEN: usize = 64;

#[derive(Clone)]
struct HttpState {
    edge_tokens: EdgeTokens,
    limit_bytes: usize,
}

/// The HTTP/JSON routes of the edge-token service. Bodies over
/// `limit_bytes` get 413.
pub fn router(edge_tokens: EdgeTokens, limit_bytes: usize) -> Router {
    let validate = post(validate).fallback(method_not_allowed);
    Router::new()
        .route(VALIDATE_PATH, validate.clone())
        // Edge answers with a trailing slash too; so do we.
        .route("/edge/validate/", validate)
        .with_state(HttpState {
            edge_tokens,
            limit_bytes,
        })
}

/// `{"tokens": [...]}`: Unleash's `validatedEdgeTokensSchema`.
#[derive(Serialize)]
struct ValidatedTokens<'a> {
    tokens: Vec<ValidatedToken<'a>>,
}

/// One valid token, with Edge's `environment` and `status` beside the
/// Unleash server's `token`, `type` and `projects`.
#[derive(Serialize)]
struct ValidatedToken<'a> {
    token: &'a str,
    #[serde(rename = "type")]
    token_type: &'static str,
    environment: &'a str,
    projects: Vec<String>,
    status: &'static str,
}

impl<'a> ValidatedToken<'a> {
    fn new(text: &'a str, record: &'a ApiTokenRecord) -> Self {
        ValidatedToken {
            token: text,
            token_type: record.token.token_type.unleash_name(),
            environment: record.token.environment.as_str(),
            projects: record.token.projects.names(),
            status: "Validated",
        }
    }
}

/// A JSON error: the stable reason, a message for humans, and for bad
/// input the field.
#[derive(Serialize)]
struct ErrorBody<'a> {
    reason: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

async fn validate(State(state): State<HttpState>, request: Request) -> Response {
    let body = match read_body(&state, request).await {
        Ok(body) => body,
        Err(error) => return error_response(&error),
    };
    // Room is taken before the JSON is parsed, whose cost and memory grow
    // with the body, so waiting batches hold only their bytes.
    let room = state
        .edge_tokens
        .context
        .batch_room
        .enter("EdgeValidate", body.len() / BODY_BYTES_PER_TOKEN);
    let _room = match room.await {
        Ok(room) => room,
        Err(error) => return error_response(&error),
    };
    let texts = match parse_tokens(&body) {
        Ok(texts) => texts,
        Err(error) => return error_response(&error),
    };
    match state.edge_tokens.validate_in_room(&texts).await {
        Ok(valid) => {
            let answer = ValidatedTokens {
                tokens: valid
                    .iter()
                    .map(|(text, record)| ValidatedToken::new(text, record))
                    .collect(),
            };
            json_response(StatusCode::OK, &answer)
        }
        Err(error) => error_response(&error),
    }
}

async fn method_not_allowed() -> Response {
    let mut response = error_response(&Error::MethodNotAllowed);
    response
        .headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
    response
}

/// The body, checked in the order a client would fix it: content type
/// (before the body is read), then size. Its JSON syntax and shape are
/// checked by [`parse_tokens`] once the batch has room.
async fn read_body(state: &HttpState, request: Request) -> Result<Bytes> {
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return Err(Error::UnsupportedMediaType);
    }
    let too_large = Error::RequestTooLarge {
        limit_bytes: state.limit_bytes,
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.limit_bytes as u64) {
        return Err(too_large);
    }
    // Reading stops at the limit. The other way to fail is a connection
    // that broke mid-body, whose answer nobody reads.
    axum::body::to_bytes(body, state.limit_bytes)
        .await
        .map_err(|_| too_large)
}

/// `{"tokens": ["…", …]}`; other fields are ignored, as Unleash does.
/// Public as the pure half of the route, for the fuzz target `edge_body`.
pub fn parse_tokens(bytes: &[u8]) -> Result<Vec<String>> {
    let body: Value = serde_json::from_slice(bytes).map_err(|error| {
        // serde_json's message never quotes the input, but say only where.
        Error::invalid(
            "body",
            format!(
                "is not JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        )
    })?;
    let Value::Object(mut body) = body else {
        return Err(Error::invalid(
            "body",
            "must be a JSON object: {\"tokens\": [...]}",
        ));
    };
    let Some(tokens) = body.remove("tokens") else {
        return Err(Error::invalid("tokens", "is required"));
    };
    let Value::Array(tokens) = tokens else {
        return Err(Error::invalid("tokens", "must be a list of strings"));
    };
    tokens
        .into_iter()
        .enumerate()
        .map(|(index, token)| match token {
            Value::String(text) => Ok(text),
            _ => Err(Error::invalid(
                format!("tokens[{index}]").as_str(),
                "must be a string",
            )),
        })
        .collect()
}

/// `application/json` or any `application/*+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

fn error_response(error: &Error) -> Response {
    log_cause(error);
    let (_, reason) = classify(error);
    let field = match error {
        Error::InvalidField { field, .. } => Some(field.as_str()),
        _ => None,
    };
    let body = ErrorBody {
        reason,
        message: error.to_string(),
        field,
    };
    json_response(http_status(error), &body)
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    // Serializing these plain structs cannot fail; fall back to a bare
    // status rather than panic if it ever does.
    let Ok(json) = serde_json::to_vec(body) else {
        return status_only(StatusCode::INTERNAL_SERVER_ERROR);
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR))
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<&[&str], &str>) {
        let got = parse_tokens(body.as_bytes());
        match (got, expected) {
            (Ok(tokens), Ok(expected)) => assert_eq!(tokens, expected, "{body}"),
            (Err(Error::InvalidField { field, .. }), Err(expected)) => {
                assert_eq!(field.as_str(), expected, "{body}")
            }
            (got, expected) => panic!("{body}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn bodies_parse_or_name_what_is_wrong() {
        check(r#"{"tokens": []}"#, Ok(&[]));
        check(r#"{"tokens": ["a", "b"], "extra": 1}"#, Ok(&["a", "b"]));
        check("", Err("body"));
        check("{", Err("body"));
        check(r#"["a"]"#, Err("body"));
        check("{}", Err("tokens"));
        check(r#"{"tokens": "a"}"#, Err("tokens"));
        check(r#"{"tokens": null}"#, Err("tokens"));
        check(r#"{"tokens": ["a", 1]}"#, Err("tokens[1]"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let check = |value: Option<&str>, expected: bool| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::CONTENT_TYPE, value.parse().expect("ascii"));
            }
            assert_eq!(is_json(&headers), expected, "{value:?}");
        };
        check(Some("application/json"), true);
        check(Some("Application/JSON; charset=utf-8"), true);
        check(Some("application/vnd.unleash+json"), true);
        check(Some("text/plain"), false);
        check(Some("application/x-www-form-urlencoded"), false);
        check(None, false);
    }
}
