//! Conversions of API tokens between wire and domain types.

use sigil_domain::{
    ApiToken, ApiTokenFilter, ApiTokenRecord, ApiTokenType, Environment, Error, NewApiToken,
    ProjectName, Result,
};

use super::{timestamp_from_pb, timestamp_to_pb};
use crate::v1 as pb;

/// A wire token type at `field`: `None` for UNSPECIFIED, INVALID_ARGUMENT
/// for a number this version does not know.
pub fn api_token_type_from_pb(value: i32, field: &str) -> Result<Option<ApiTokenType>> {
    match pb::ApiTokenType::try_from(value) {
        Ok(pb::ApiTokenType::Unspecified) => Ok(None),
        Ok(pb::ApiTokenType::Client) => Ok(Some(ApiTokenType::Client)),
        Ok(pb::ApiTokenType::Backend) => Ok(Some(ApiTokenType::Backend)),
        Ok(pb::ApiTokenType::Frontend) => Ok(Some(ApiTokenType::Frontend)),
        Ok(pb::ApiTokenType::Admin) => Ok(Some(ApiTokenType::Admin)),
        Err(_) => Err(Error::invalid(field, "is not a known token type")),
    }
}

impl From<ApiTokenType> for pb::ApiTokenType {
    fn from(token_type: ApiTokenType) -> Self {
        match token_type {
            ApiTokenType::Client => pb::ApiTokenType::Client,
            ApiTokenType::Backend => pb::ApiTokenType::Backend,
            ApiTokenType::Frontend => pb::ApiTokenType::Frontend,
            ApiTokenType::Admin => pb::ApiTokenType::Admin,
        }
    }
}

impl From<&ApiToken> for pb::ApiToken {
    fn from(token: &ApiToken) -> Self {
        pb::ApiToken {
            id: token.id.to_string(),
            token_name: token.name.clone(),
            r#type: pb::ApiTokenType::from(token.token_type).into(),
            projects: token.projects.names(),
            environment: token.environment.as_str().to_owned(),
            created_at: Some(timestamp_to_pb(token.created_at)),
            expires_at: token.expires_at.map(timestamp_to_pb),
        }
    }
}

impl pb::ValidatedApiToken {
    /// The answer for the valid token string `text`, whose record is
    /// `record`.
    pub fn new(text: &str, record: &ApiTokenRecord) -> Self {
        pb::ValidatedApiToken {
            token: text.to_owned(),
            r#type: pb::ApiTokenType::from(record.token.token_type).into(),
            projects: record.token.projects.names(),
            environment: record.token.environment.as_str().to_owned(),
        }
    }
}

impl TryFrom<pb::CreateApiTokenRequest> for NewApiToken {
    type Error = Error;

    fn try_from(request: pb::CreateApiTokenRequest) -> Result<Self> {
        let pb::CreateApiTokenRequest {
            token_name,
            r#type,
            projects,
            environment,
            expires_at,
        } = request;
        let token_type = api_token_type_from_pb(r#type, "type")?;
        let expires_at = expires_at
            .map(|at| timestamp_from_pb(at, "expires_at"))
            .transpose()?;
        NewApiToken::new(&token_name, token_type, &projects, &environment, expires_at)
    }
}

/// The filter of a ListApiTokens request; empty fields match anything.
pub fn api_token_filter(
    token_type: i32,
    project: &str,
    environment: &str,
) -> Result<ApiTokenFilter> {
    Ok(ApiTokenFilter {
        token_type: api_token_type_from_pb(token_type, "type")?,
        project: (!project.is_empty())
            .then(|| ProjectName::parse(project, "project"))
            .transpose()?,
        environment: (!environment.is_empty())
            .then(|| Environment::parse(environment, "environment"))
            .transpose()?,
    })
}
