//! The issuer: creates sessions, authorizes them with their one-time nonce,
//! and extends and revokes them. Handlers read parse → domain → store → map.

mod events;
mod sessions;
mod tokens;

use getrandom::{
    SysRng,
    rand_core::{Rng, UnwrapErr},
};
use sigil_domain::PageTokenKey;
use sigil_proto::{status::to_status, v1 as pb};
use sigil_runtime::{Context, Services};
use tonic::{Request, Response, Status};

use pb::issuer_service_server::{IssuerService, IssuerServiceServer, SERVICE_NAME};

/// The `sigil.v1.IssuerService` handlers.
#[derive(Clone)]
pub struct Issuer {
    context: Context,
    /// Signs ListSessions page tokens.
    page_key: PageTokenKey,
}

/// Adds the issuer to `services`: its gRPC service, the event feed
/// (`sigil.v1.EventService`), and the JWKS over HTTP at
/// `/.well-known/jwks.json`.
pub fn add_to(services: &mut Services, context: &Context) {
    let server = IssuerServiceServer::new(Issuer {
        context: context.clone(),
        page_key: page_token_key(context),
    })
    .max_decoding_message_size(context.limits.max_request_bytes);
    services.add(SERVICE_NAME, server);
    let events = pb::event_service_server::EventServiceServer::new(events::Events {
        context: context.clone(),
        draining: services.draining(),
    })
    .max_decoding_message_size(context.limits.max_request_bytes);
    services.add(pb::event_service_server::SERVICE_NAME, events);
    services.add_http(tokens::jwks_http_route(context.clone()));
}

/// The ListSessions page-token key: derived from the master key, so every
/// issuer of a cluster shares it; without one, this process's own random
/// key, and a page token works only at the issuer that made it.
fn page_token_key(context: &Context) -> PageTokenKey {
    let bytes = match &context.master_key {
        Some(master_key) => master_key.derive("sigil list-sessions page token"),
        None => {
            let mut bytes = [0u8; 32];
            UnwrapErr(SysRng).fill_bytes(&mut bytes);
            bytes
        }
    };
    PageTokenKey::from_bytes(bytes)
}

#[tonic::async_trait]
impl IssuerService for Issuer {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        self.create(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn authorize_session(
        &self,
        request: Request<pb::AuthorizeSessionRequest>,
    ) -> Result<Response<pb::AuthorizeSessionResponse>, Status> {
        self.authorize(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        self.get(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        self.list(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn extend_session(
        &self,
        request: Request<pb::ExtendSessionRequest>,
    ) -> Result<Response<pb::ExtendSessionResponse>, Status> {
        self.extend(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        self.revoke(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn revoke_subject_sessions(
        &self,
        request: Request<pb::RevokeSubjectSessionsRequest>,
    ) -> Result<Response<pb::RevokeSubjectSessionsResponse>, Status> {
        self.revoke_subject(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn put_token_template(
        &self,
        request: Request<pb::PutTokenTemplateRequest>,
    ) -> Result<Response<pb::PutTokenTemplateResponse>, Status> {
        self.put_template(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_token_template(
        &self,
        request: Request<pb::GetTokenTemplateRequest>,
    ) -> Result<Response<pb::GetTokenTemplateResponse>, Status> {
        self.get_template(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn list_token_templates(
        &self,
        request: Request<pb::ListTokenTemplatesRequest>,
    ) -> Result<Response<pb::ListTokenTemplatesResponse>, Status> {
        self.list_templates(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn delete_token_template(
        &self,
        request: Request<pb::DeleteTokenTemplateRequest>,
    ) -> Result<Response<pb::DeleteTokenTemplateResponse>, Status> {
        self.delete_template(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_token(
        &self,
        request: Request<pb::GetTokenRequest>,
    ) -> Result<Response<pb::GetTokenResponse>, Status> {
        self.token(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        self.rotate(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        self.jwks(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
