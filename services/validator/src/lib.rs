//! The validator: answers "is this session token good, and what may it do?"
//! with one store round trip per call (or none, from the opt-in near-cache
//! the event feed or Redis key tracking keeps exact), and verifies the
//! issuer's JWTs.

mod batch;
mod keys;
mod session_cache;
mod verify;

use std::sync::Arc;

use sigil_domain::{
    AccessDecision, Error, FieldPath, Permission, Result, SessionKey, SessionRecord,
};
use sigil_proto::{convert::assurance_level_from_pb, status::to_status, v1 as pb};
use sigil_runtime::{Context, Services};
use sigil_store::{CachedSessions, InvalidationSource, Invalidations};
use tonic::{Request, Response, Status, metadata::MetadataMap};

pub use keys::KeySettings;
pub use session_cache::{Invalidation, SessionCacheArgs};

use pb::validator_service_server::{SERVICE_NAME, ValidatorService, ValidatorServiceServer};

/// Longest resource name CheckAccess accepts.
const MAX_RESOURCE_LEN: usize = 1024;

/// The `sigil.v1.ValidatorService` handlers.
#[derive(Clone)]
pub struct Validator {
    context: Context,
    keys: Arc<keys::KeyCache>,
    templates: Arc<keys::TemplateCache>,
}

/// Adds the validator to `services`. Fails on a malformed issuer URL, and
/// on a near-cache over a store whose feed may miss a change (a Redis
/// Cluster).
pub fn add_to(
    services: &mut Services,
    context: &Context,
    settings: &KeySettings,
) -> Result<(), String> {
    let mut context = context.clone();
    if let Some(cache) = settings.session_cache {
        let invalidations = match cache.invalidation {
            InvalidationSource::EventFeed => {
                if !context.events.every_change_has_its_event() {
                    // A change whose event is lost would leave the cache
                    // serving the old record (a revoked session as valid)
                    // until its TTL.
                    return Err(
                        "the session near-cache (SIGIL_SESSION_CACHE) needs a store whose \
                        every change has its event, which a Redis Cluster \
                        (SIGIL_REDIS_URL redis+cluster://) does not give: turn one of them off \
                        (see docs/operations.md, \"Redis Cluster, TLS and ACL users\")"
                            .to_owned(),
                    );
                }
                Invalidations::EventFeed(Arc::clone(&context.events))
            }
            InvalidationSource::KeyTracking => {
                let tracking = context.events.session_tracking().ok_or_else(|| {
                    "SIGIL_SESSION_CACHE_INVALIDATION=key-tracking needs a single Redis \
                     (SIGIL_REDIS_URL redis:// or rediss://): the in-memory store and a \
                     Redis Cluster have no key tracking"
                        .to_owned()
                })?;
                Invalidations::KeyTracking(tracking)
            }
        };
        context.store = Arc::new(CachedSessions::new(
            Arc::clone(&context.store),
            invalidations,
            cache,
        ));
    }
    let server = ValidatorServiceServer::new(Validator {
        context: context.clone(),
        keys: Arc::new(keys::KeyCache::new(settings, context.tls.as_ref())?),
        templates: Arc::new(keys::TemplateCache::new(settings.template_cache_ttl)),
    })
    .max_decoding_message_size(context.limits.max_request_bytes);
    services.add(SERVICE_NAME, server);
    Ok(())
}

impl Validator {
    /// The record of the ACTIVE session `token` belongs to. A malformed
    /// token is refused before any store round trip; every refusal looks
    /// the same. Shared, not copied: a near-cache hit costs no clone.
    async fn authenticate(&self, token: &str) -> Result<Arc<SessionRecord>> {
        let key = SessionKey::parse_presented(token)?;
        let record = self
            .context
            .store
            .get_shared(key.session_id())
            .await?
            .ok_or(Error::SessionInvalid)?;
        record.authenticate(&key, self.context.clock.now())?;
        Ok(record)
    }

    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Result<pb::WhoAmIResponse> {
        let (metadata, _, request) = request.into_parts();
        let pb::WhoAmIRequest {
            session_token: token_field,
            tokenize_as,
            required_assurance_level,
        } = request;
        let required =
            assurance_level_from_pb(required_assurance_level, "required_assurance_level")?;
        let record = self
            .authenticate(session_token(&token_field, &metadata))
            .await?;
        let session = &record.session;
        session.assurance_level.meets(required)?;
        let tokenized = if tokenize_as.is_empty() {
            String::new()
        } else {
            sigil_jwt::check_name(&tokenize_as, "tokenize_as")?;
            self.context.mint_token(session, &tokenize_as).await?.jwt
        };
        Ok(pb::WhoAmIResponse {
            session: Some(session.into()),
            tokenized,
        })
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<pb::CheckAccessResponse> {
        let (metadata, _, request) = request.into_parts();
        let pb::CheckAccessRequest {
            session_token: token_field,
            permission,
            resource,
            required_assurance_level,
        } = request;
        let permission = Permission::parse(&permission, &FieldPath::from("permission"))?;
        let required =
            assurance_level_from_pb(required_assurance_level, "required_assurance_level")?;
        if resource.len() > MAX_RESOURCE_LEN {
            return Err(Error::invalid("resource", "at most 1024 characters"));
        }
        let resource = (!resource.is_empty()).then_some(resource.as_str());
        let record = self
            .authenticate(session_token(&token_field, &metadata))
            .await?;
        let session = &record.session;
        session.assurance_level.meets(required)?;
        let decision =
            AccessDecision::decide(&session.permissions, &session.rules, &permission, resource);
        Ok(pb::CheckAccessResponse::new(session, &decision))
    }
}

/// The session token: the request field if given, else `authorization:
/// Bearer <token>`, else `x-session-token`, as Ory Kratos accepts it. Empty
/// when none is given, which authenticates nobody.
fn session_token<'a>(field: &'a str, metadata: &'a MetadataMap) -> &'a str {
    if !field.is_empty() {
        return field;
    }
    sigil_runtime::bearer_token(metadata)
        .or_else(|| metadata.get("x-session-token")?.to_str().ok())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl ValidatorService for Validator {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        Validator::who_am_i(self, request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        Validator::check_access(self, request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn verify_token(
        &self,
        request: Request<pb::VerifyTokenRequest>,
    ) -> Result<Response<pb::VerifyTokenResponse>, Status> {
        self.verify(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn batch_who_am_i(
        &self,
        request: Request<pb::BatchWhoAmIRequest>,
    ) -> Result<Response<pb::BatchWhoAmIResponse>, Status> {
        Validator::batch_who_am_i(self, request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn batch_verify_tokens(
        &self,
        request: Request<pb::BatchVerifyTokensRequest>,
    ) -> Result<Response<pb::BatchVerifyTokensResponse>, Status> {
        self.batch_verify(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
