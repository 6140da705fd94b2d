//! JWT handlers: token templates, GetToken, signing keys and the JWKS.

use axum::{http::header, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{Error, Result, SessionId, SessionKey};
use sigil_jwt::check_name;
use sigil_proto::{
    convert::timestamp_to_pb,
    jwt::{jwk_of, jwk_to_json, rotation_algorithm, template_spec},
    status::classify,
    v1 as pb,
};
use sigil_runtime::Context;
use tonic::Request;

use crate::Issuer;

/// How often a template put retries when another put of the same new name
/// races it.
const MAX_PUT_ATTEMPTS: usize = 3;

impl Issuer {
    pub(crate) async fn put_template(
        &self,
        request: Request<pb::PutTokenTemplateRequest>,
    ) -> Result<pb::PutTokenTemplateResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::PutTokenTemplateRequest { template } = request.into_inner();
        let template = template.ok_or_else(|| Error::invalid("template", "is required"))?;
        let spec = template_spec(template, &self.context.template_limits())?;
        let master_key = self.context.master_key()?;
        let store = &self.context.jwt_store;
        for _ in 0..MAX_PUT_ATTEMPTS {
            let previous = store.template(spec.name()).await?;
            let now = self.context.clock.now();
            let (stored, secret) = spec.clone().into_stored(
                previous.as_ref(),
                now,
                master_key,
                &mut UnwrapErr(SysRng),
            );
            // A new name is created only if still free, so two racing puts
            // cannot each hand out a shared secret of which one is lost.
            let written = match previous {
                Some(_) => store.replace_template(&stored).await.map(|()| true)?,
                None => store.create_template(&stored).await?,
            };
            if written {
                tracing::info!(template = %stored.name, "token template put");
                return Ok(pb::PutTokenTemplateResponse {
                    template: Some((&stored).into()),
                    shared_secret: secret
                        .map(|secret| URL_SAFE_NO_PAD.encode(secret))
                        .unwrap_or_default(),
                });
            }
        }
        Err(Error::Conflict)
    }

    pub(crate) async fn get_template(
        &self,
        request: Request<pb::GetTokenTemplateRequest>,
    ) -> Result<pb::GetTokenTemplateResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::GetTokenTemplateRequest { name } = request.into_inner();
        check_name(&name, "name")?;
        let template = self
            .context
            .jwt_store
            .template(&name)
            .await?
            .ok_or(Error::TemplateNotFound)?;
        Ok(pb::GetTokenTemplateResponse {
            template: Some((&template).into()),
        })
    }

    pub(crate) async fn list_templates(
        &self,
        request: Request<pb::ListTokenTemplatesRequest>,
    ) -> Result<pb::ListTokenTemplatesResponse> {
        self.context.admin.check(request.metadata())?;
        let mut templates = self.context.jwt_store.templates().await?;
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pb::ListTokenTemplatesResponse {
            templates: templates.iter().map(Into::into).collect(),
        })
    }

    pub(crate) async fn delete_template(
        &self,
        request: Request<pb::DeleteTokenTemplateRequest>,
    ) -> Result<pb::DeleteTokenTemplateResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::DeleteTokenTemplateRequest { name } = request.into_inner();
        check_name(&name, "name")?;
        if !self.context.jwt_store.delete_template(&name).await? {
            return Err(Error::TemplateNotFound);
        }
        tracing::info!(template = %name, "token template deleted");
        Ok(pb::DeleteTokenTemplateResponse {})
    }

    pub(crate) async fn token(
        &self,
        request: Request<pb::GetTokenRequest>,
    ) -> Result<pb::GetTokenResponse> {
        let (metadata, _, request) = request.into_parts();
        let pb::GetTokenRequest {
            session_token,
            session_id,
            template,
        } = request;
        check_name(&template, "template")?;
        let session_token = match session_token.as_str() {
            "" => metadata
                .get("x-session-token")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            _ => session_token,
        };
        let now = self.context.clock.now();
        let session = if !session_token.is_empty() {
            // The session's own key: only an ACTIVE session answers, and any
            // other looks like a bad key.
            let key = SessionKey::parse_presented(&session_token)?;
            let record = self
                .context
                .store
                .get(key.session_id())
                .await?
                .ok_or(Error::SessionInvalid)?;
            record.authenticate(&key, now)?.clone()
        } else {
            self.context.admin.check(&metadata)?;
            let id = SessionId::parse_field(&session_id, "session_id")?;
            let record = self.load(id).await?;
            if !record.is_active(now) {
                return Err(Error::SessionNotActive);
            }
            record.session
        };
        let minted = self.context.mint_token(&session, &template).await?;
        Ok(pb::GetTokenResponse {
            jwt: minted.jwt,
            expires_at: Some(timestamp_to_pb(minted.expires_at)),
        })
    }

    pub(crate) async fn rotate(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<pb::RotateSigningKeyResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::RotateSigningKeyRequest { algorithm } = request.into_inner();
        let algorithm = rotation_algorithm(algorithm)?;
        let (key, retired_kids) = self.context.rotate_signing_key(algorithm).await?;
        Ok(pb::RotateSigningKeyResponse {
            key: jwk_of(&key),
            retired_kids,
        })
    }

    pub(crate) async fn jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<pb::GetJwksResponse> {
        jwks(&self.context).await
    }
}

async fn jwks(context: &Context) -> Result<pb::GetJwksResponse> {
    let keys = context.published_signing_keys().await?;
    Ok(pb::GetJwksResponse {
        keys: keys.iter().filter_map(jwk_of).collect(),
    })
}

/// `GET /.well-known/jwks.json`: the same keys as GetJwks, as RFC 7517 JSON,
/// for JWT libraries in any language.
pub(crate) fn jwks_http_route(context: Context) -> axum::Router {
    axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let context = context.clone();
            async move {
                match jwks(&context).await {
                    Ok(jwks) => {
                        let keys: Vec<_> = jwks.keys.iter().map(jwk_to_json).collect();
                        let body = serde_json::json!({ "keys": keys }).to_string();
                        (
                            axum::http::StatusCode::OK,
                            [
                                (header::CONTENT_TYPE, "application/json"),
                                (header::CACHE_CONTROL, "max-age=60"),
                            ],
                            body,
                        )
                    }
                    Err(error) => {
                        let (code, reason) = classify(&error);
                        let status = if code == tonic::Code::Unavailable {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        };
                        let body = serde_json::json!({ "error": reason }).to_string();
                        (
                            status,
                            [
                                (header::CONTENT_TYPE, "application/json"),
                                (header::CACHE_CONTROL, "no-store"),
                            ],
                            body,
                        )
                    }
                }
            }
        }),
    )
}
