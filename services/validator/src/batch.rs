//! BatchWhoAmI and BatchVerifyTokens: one answer per entry in request order,
//! and at most one store round trip for the whole batch, once the process's
//! [`BatchRoom`](sigil_runtime::BatchRoom) has room for it.

use std::collections::HashMap;

use sigil_domain::{Error, Result, SessionId, SessionKey, SessionRecord, TokenRejection};
use sigil_proto::{convert::assurance_level_from_pb, status::to_batch_error, v1 as pb};
use tonic::Request;

use crate::{
    Validator,
    verify::{Templates, verified_response},
};

/// One entry's answer before it is put on the wire; cloned for repeats.
type Entry<T> = std::result::Result<T, pb::BatchError>;

impl Validator {
    pub(crate) async fn batch_who_am_i(
        &self,
        request: Request<pb::BatchWhoAmIRequest>,
    ) -> Result<pb::BatchWhoAmIResponse> {
        let pb::BatchWhoAmIRequest {
            tokens,
            required_assurance_level,
        } = request.into_inner();
        self.context.limits.check_batch(tokens.len())?;
        let required =
            assurance_level_from_pb(required_assurance_level, "required_assurance_level")?;
        let _room = self
            .context
            .batch_room
            .enter("BatchWhoAmI", tokens.len())
            .await?;
        // Malformed tokens are answered here, before the store.
        let keys: Vec<Result<SessionKey>> = tokens
            .iter()
            .map(|token| SessionKey::parse_presented(token))
            .collect();
        let ids = keys
            .iter()
            .filter_map(|key| key.as_ref().ok().map(SessionKey::session_id));
        let records = self.records(ids).await?;
        // One `now` for the whole batch, so repeats of a token agree even at
        // the instant a session expires.
        let now = self.context.clock.now();
        let results = keys
            .into_iter()
            .map(|key| {
                let answer = key.and_then(|key| {
                    records
                        .get(&key.session_id())
                        .ok_or(Error::SessionInvalid)?
                        .authenticate(&key, now)
                        .and_then(|session| {
                            session.assurance_level.meets(required)?;
                            Ok(pb::Session::from(session))
                        })
                });
                let result = match answer {
                    Ok(session) => pb::batch_who_am_i_result::Result::Session(session),
                    Err(error) => pb::batch_who_am_i_result::Result::Error(entry_error(error)?),
                };
                Ok(pb::BatchWhoAmIResult {
                    result: Some(result),
                })
            })
            .collect::<Result<_>>()?;
        Ok(pb::BatchWhoAmIResponse { results })
    }

    pub(crate) async fn batch_verify(
        &self,
        request: Request<pb::BatchVerifyTokensRequest>,
    ) -> Result<pb::BatchVerifyTokensResponse> {
        let pb::BatchVerifyTokensRequest {
            jwts,
            audience,
            check_session,
        } = request.into_inner();
        self.context.limits.check_batch(jwts.len())?;
        let audience = (!audience.is_empty()).then_some(audience.as_str());
        // Held through the signature checks too: they, not the store, are
        // most of a batch's cost.
        let _room = self
            .context
            .batch_room
            .enter("BatchVerifyTokens", jwts.len())
            .await?;
        // Each distinct JWT is verified once; repeats share its answer.
        let mut verified: HashMap<&str, Entry<sigil_jwt::VerifiedToken>> = HashMap::new();
        let mut templates = Templates::new();
        for jwt in &jwts {
            if verified.contains_key(jwt.as_str()) {
                continue;
            }
            let answer = match self.verify_jwt_with(jwt, audience, &mut templates).await {
                Ok(token) => Ok(token),
                Err(error) => Err(entry_error(error)?),
            };
            verified.insert(jwt, answer);
        }
        if check_session {
            let ids = verified
                .values()
                .filter_map(|answer| answer.as_ref().ok()?.session_id);
            let records = self.records(ids).await?;
            let now = self.context.clock.now();
            for answer in verified.values_mut() {
                let Ok(token) = answer else { continue };
                let rejection = match token.session_id {
                    None => Some(TokenRejection::Malformed),
                    Some(id) if !records.get(&id).is_some_and(|record| record.is_active(now)) => {
                        Some(TokenRejection::SessionInactive)
                    }
                    Some(_) => None,
                };
                if let Some(rejection) = rejection {
                    *answer = Err(entry_error(Error::TokenRejected(rejection))?);
                }
            }
        }
        let results = jwts
            .iter()
            .map(|jwt| {
                let result = match &verified[jwt.as_str()] {
                    Ok(token) => pb::batch_verify_tokens_result::Result::Token(verified_response(
                        token.clone(),
                    )),
                    Err(error) => pb::batch_verify_tokens_result::Result::Error(error.clone()),
                };
                pb::BatchVerifyTokensResult {
                    result: Some(result),
                }
            })
            .collect();
        Ok(pb::BatchVerifyTokensResponse { results })
    }

    /// The live records of the distinct sessions `ids`, in one store call.
    async fn records(
        &self,
        ids: impl Iterator<Item = SessionId>,
    ) -> Result<HashMap<SessionId, SessionRecord>> {
        let mut ids: Vec<SessionId> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let records = self.context.store.get_many(&ids).await?;
        Ok(ids
            .into_iter()
            .zip(records)
            .filter_map(|(id, record)| Some((id, record?)))
            .collect())
    }
}

/// An entry's refusal, or the error that fails the whole batch: a store or
/// key-fetch failure is never answered per entry, so no entry looks refused
/// (or valid) because the store was down.
fn entry_error(error: Error) -> Result<pb::BatchError> {
    match error {
        Error::SessionInvalid | Error::SessionAal2Required | Error::TokenRejected(_) => {
            Ok(to_batch_error(&error))
        }
        other => Err(other),
    }
}
