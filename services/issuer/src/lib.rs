//! The issuer: creates sessions, authorizes them with their one-time nonce,
//! and extends and revokes them. Handlers read parse → domain → store → map.

mod sessions;
mod tokens;

use sigil_proto::{status::to_status, v1 as pb};
use sigil_runtime::{Context, Services};
use tonic::{Request, Response, Status};

use pb::issuer_service_server::{IssuerService, IssuerServiceServer, SERVICE_NAME};

/// The `sigil.v1.IssuerService` handlers.
#[derive(Clone)]
pub struct Issuer {
    context: Context,
}

/// Adds the issuer to `services`.
/// Adds the issuer to `services`: its gRPC service and the JWKS over HTTP at
/// `/.well-known/jwks.json`.
pub fn add_to(services: &mut Services, context: &Context) {
    let server = IssuerServiceServer::new(Issuer {
        context: context.clone(),
    })
    .max_decoding_message_size(context.limits.max_request_bytes);
    services.add(SERVICE_NAME, server);
    services.add_http(tokens::jwks_http_route(context.clone()));
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
