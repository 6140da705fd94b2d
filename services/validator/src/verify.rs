//! VerifyToken: a JWT of this cluster's issuer, checked against the key its
//! `kid` names and the template it came from.

use std::{collections::HashMap, sync::Arc};

use sigil_domain::{Error, Result, TokenRejection};
use sigil_jwt::{VerifiedToken, VerifyingKey, check_claims, header_kid, verify_signature};
use sigil_proto::{convert::timestamp_to_pb, jwt::json_to_struct, v1 as pb};
use tonic::Request;

use crate::{Validator, keys::CachedTemplate};

/// Prefix of the key id of a template's HS256 shared secret.
const HS256_KID_PREFIX: &str = "hs256-";
/// Length of the random suffix after the template name in an HS256 kid.
const HS256_KID_SUFFIX_LEN: usize = 12;

impl Validator {
    pub(crate) async fn verify(
        &self,
        request: Request<pb::VerifyTokenRequest>,
    ) -> Result<pb::VerifyTokenResponse> {
        let pb::VerifyTokenRequest {
            jwt,
            audience,
            consume_jti,
            check_session,
        } = request.into_inner();
        let verified = self
            .verify_jwt(&jwt, (!audience.is_empty()).then_some(audience.as_str()))
            .await?;
        let now = self.context.clock.now();
        if check_session {
            let session_id = verified
                .session_id
                .ok_or(Error::TokenRejected(TokenRejection::Malformed))?;
            let active = self
                .context
                .store
                .get(session_id)
                .await?
                .is_some_and(|record| record.is_active(now));
            if !active {
                return Err(Error::TokenRejected(TokenRejection::SessionInactive));
            }
        }
        if consume_jti {
            let jti = verified
                .jti
                .as_deref()
                .ok_or(Error::TokenRejected(TokenRejection::Malformed))?;
            // Keep the mark past `exp` by the skew the token was checked with,
            // so it cannot be replayed inside that window either.
            let until = verified
                .expires_at
                .plus(std::time::Duration::from_secs(300));
            if !self.context.jwt_store.consume_jti(jti, until).await? {
                return Err(Error::TokenRejected(TokenRejection::Replayed));
            }
        }
        Ok(verified_response(verified))
    }

    /// Signature with the key's own algorithm, then times, issuer and
    /// audience with the template's settings.
    async fn verify_jwt(&self, jwt: &str, audience: Option<&str>) -> Result<VerifiedToken> {
        self.verify_jwt_with(jwt, audience, &mut Templates::new())
            .await
    }

    /// [`Self::verify_jwt`], reading each template at most once for all the
    /// tokens verified with the same `templates`: a batch costs one read
    /// per distinct template even when the cache is cold.
    pub(crate) async fn verify_jwt_with(
        &self,
        jwt: &str,
        audience: Option<&str>,
        templates: &mut Templates,
    ) -> Result<VerifiedToken> {
        let rejected = Error::TokenRejected;
        let kid = header_kid(jwt).map_err(rejected)?;
        let key = self
            .verifying_key(&kid, templates)
            .await?
            .ok_or(rejected(TokenRejection::UnknownKey))?;
        let claims = verify_signature(jwt, &key).map_err(rejected)?;
        let template_name = claims
            .get("tpl")
            .and_then(|name| name.as_str())
            .ok_or(rejected(TokenRejection::Malformed))?
            .to_owned();
        // A deleted template takes its tokens with it.
        let cached = self
            .template(&template_name, templates)
            .await?
            .ok_or(rejected(TokenRejection::UnknownKey))?;
        let template = &cached.template;
        if template.algorithm != key.algorithm {
            return Err(rejected(TokenRejection::BadSignature));
        }
        check_claims(
            claims,
            self.context.clock.now(),
            template.allowed_clock_skew,
            template.issuer.as_deref(),
            audience,
        )
        .map_err(rejected)
    }

    /// The key a `kid` names: a template's HS256 secret from the store, or a
    /// public key from the issuer's JWKS.
    async fn verifying_key(
        &self,
        kid: &str,
        templates: &mut Templates,
    ) -> Result<Option<VerifyingKey>> {
        let Some(rest) = kid.strip_prefix(HS256_KID_PREFIX) else {
            return self.keys.key(kid).await;
        };
        let Some(name) = rest
            .len()
            .checked_sub(HS256_KID_SUFFIX_LEN + 1)
            .and_then(|end| rest.get(..end))
        else {
            return Ok(None);
        };
        if sigil_jwt::check_name(name, "kid").is_err() {
            return Ok(None);
        }
        let master_key = self.context.master_key()?;
        let template = self.template(name, templates).await?;
        Ok(template
            .filter(|cached| cached.template.secret_kid.as_deref() == Some(kid))
            .and_then(|cached| cached.hs256_key(master_key).cloned()))
    }
}

/// Templates already read by one call, by name (`None`: no such template).
pub(crate) type Templates = HashMap<String, Option<Arc<CachedTemplate>>>;

impl Validator {
    /// The template `name`, from `templates` or the cache.
    async fn template(
        &self,
        name: &str,
        templates: &mut Templates,
    ) -> Result<Option<Arc<CachedTemplate>>> {
        if let Some(template) = templates.get(name) {
            return Ok(template.clone());
        }
        let template = self.templates.get(&self.context, name).await?;
        templates.insert(name.to_owned(), template.clone());
        Ok(template)
    }
}

/// The answer for a verified token.
pub(crate) fn verified_response(verified: VerifiedToken) -> pb::VerifyTokenResponse {
    pb::VerifyTokenResponse {
        claims: Some(json_to_struct(&verified.claims)),
        subject: verified.subject,
        session_id: verified
            .session_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        expires_at: Some(timestamp_to_pb(verified.expires_at)),
    }
}
