//! The edge-token service: API tokens in Unleash's format, and their batch
//! validation with Unleash Edge's `/edge/validate` semantics, over gRPC and
//! HTTP/JSON. Handlers read parse → domain → store → map.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{ApiTokenId, ApiTokenRecord, Error, NewApiToken, Result, parse_batch};
use sigil_proto::{convert::api_token_filter, status::to_status, v1 as pb};
use sigil_runtime::{Context, Services};
use tonic::{Request, Response, Status};

use pb::edge_token_service_server::{EdgeTokenService, EdgeTokenServiceServer, SERVICE_NAME};

pub mod http;

/// ListApiTokens page size when the request says 0.
const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest ListApiTokens page; larger requests are served this many.
const MAX_PAGE_SIZE: usize = 500;
/// Most index pages one ListApiTokens call reads while filtering, so a
/// filter that matches little cannot make one call scan every token.
const MAX_PAGES_SCANNED: usize = 10;

/// The `sigil.v1.EdgeTokenService` handlers.
#[derive(Clone)]
pub struct EdgeTokens {
    context: Context,
}

/// Adds the edge-token service to `services`: gRPC, and `POST
/// /edge/validate` over HTTP/JSON.
pub fn add_to(services: &mut Services, context: &Context) {
    let edge_tokens = EdgeTokens {
        context: context.clone(),
    };
    let limit_bytes = context.limits.max_request_bytes;
    services.add_http(http::router(edge_tokens.clone(), limit_bytes));
    let server = EdgeTokenServiceServer::new(edge_tokens).max_decoding_message_size(limit_bytes);
    services.add(SERVICE_NAME, server);
}

impl EdgeTokens {
    /// The valid tokens among `texts`, in request order, each distinct
    /// string once, with their records. Malformed strings are dropped
    /// before the store; the rest cost one store round trip together. The
    /// caller holds room for the batch in the process's
    /// [`BatchRoom`](sigil_runtime::BatchRoom).
    async fn validate_in_room<'a>(
        &self,
        texts: &'a [String],
    ) -> Result<Vec<(&'a str, ApiTokenRecord)>> {
        let batch = parse_batch(texts);
        let ids: Vec<ApiTokenId> = batch.iter().map(|(_, presented)| presented.id()).collect();
        let records = self.context.api_tokens.tokens(&ids).await?;
        let now = self.context.clock.now();
        let valid: Vec<_> = batch
            .into_iter()
            .zip(records)
            .filter_map(|((text, presented), record)| {
                let record = record?;
                record.accepts(&presented, now).then_some((text, record))
            })
            .collect();
        tracing::debug!(
            presented = texts.len(),
            looked_up = ids.len(),
            valid = valid.len(),
            "tokens validated"
        );
        // Counted here, so gRPC and `/edge/validate` count alike.
        metrics::counter!("sigil_api_tokens_validated_total", "result" => "valid")
            .increment(valid.len() as u64);
        metrics::counter!("sigil_api_tokens_validated_total", "result" => "invalid")
            .increment((texts.len() - valid.len()) as u64);
        Ok(valid)
    }

    async fn create(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<pb::CreateApiTokenResponse> {
        self.context.admin.check(request.metadata())?;
        let command = NewApiToken::try_from(request.into_inner())?;
        let (record, secret) = command.issue(self.context.clock.now(), &mut UnwrapErr(SysRng))?;
        self.context.api_tokens.insert_token(&record).await?;
        tracing::info!(token_id = %record.token.id, "API token created");
        Ok(pb::CreateApiTokenResponse {
            api_token: Some((&record.token).into()),
            token: secret.expose().to_owned(),
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<pb::ListApiTokensResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::ListApiTokensRequest {
            r#type,
            project,
            environment,
            page_size,
            page_token,
        } = request.into_inner();
        let filter = api_token_filter(r#type, &project, &environment)?;
        let page_size = match usize::try_from(page_size) {
            Err(_) => return Err(Error::invalid("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
        };
        let mut cursor = decode_page_token(&page_token)?;
        let now = self.context.clock.now();
        let mut api_tokens = Vec::new();
        for _ in 0..MAX_PAGES_SCANNED {
            let page = self
                .context
                .api_tokens
                .list_tokens(cursor.as_deref(), page_size)
                .await?;
            cursor = page.next_cursor;
            for (after, record) in page.records {
                if filter.matches(&record.token, now) {
                    api_tokens.push(pb::ApiToken::from(&record.token));
                    if api_tokens.len() == page_size {
                        // Stop right after this token, even mid-page.
                        cursor = Some(after);
                        break;
                    }
                }
            }
            if api_tokens.len() == page_size || cursor.is_none() {
                break;
            }
        }
        Ok(pb::ListApiTokensResponse {
            api_tokens,
            next_page_token: cursor
                .map(|cursor| URL_SAFE_NO_PAD.encode(cursor))
                .unwrap_or_default(),
        })
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<pb::RevokeApiTokenResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::RevokeApiTokenRequest { id } = request.into_inner();
        let id = ApiTokenId::parse_field(&id, "id")?;
        let now = self.context.clock.now();
        // An expired token Redis has not evicted yet (clocks differ) is
        // removed all the same, but reported as gone, as the memory store
        // reports it.
        let record = self
            .context
            .api_tokens
            .remove_token(id)
            .await?
            .filter(|record| record.token.expires_at.is_none_or(|at| now < at))
            .ok_or(Error::ApiTokenNotFound)?;
        tracing::info!(token_id = %id, "API token revoked");
        Ok(pb::RevokeApiTokenResponse {
            api_token: Some((&record.token).into()),
        })
    }

    async fn validate_tokens(
        &self,
        request: Request<pb::ValidateTokensRequest>,
    ) -> Result<pb::ValidateTokensResponse> {
        let pb::ValidateTokensRequest { tokens } = request.into_inner();
        let _room = self
            .context
            .batch_room
            .enter("ValidateTokens", tokens.len())
            .await?;
        let valid = self.validate_in_room(&tokens).await?;
        Ok(pb::ValidateTokensResponse {
            tokens: valid
                .iter()
                .map(|(text, record)| pb::ValidatedApiToken::new(text, record))
                .collect(),
        })
    }
}

fn decode_page_token(token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| Error::invalid("page_token", "is not a token this server issued"))
}

#[tonic::async_trait]
impl EdgeTokenService for EdgeTokens {
    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        self.create(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        self.list(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        self.revoke(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn validate_tokens(
        &self,
        request: Request<pb::ValidateTokensRequest>,
    ) -> Result<Response<pb::ValidateTokensResponse>, Status> {
        EdgeTokens::validate_tokens(self, request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
