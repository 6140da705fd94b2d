//! The API tokens the validation scenarios present: created with
//! CreateApiToken (admin) before the measurement.

use std::{sync::Arc, time::Duration};

use sigil_proto::v1 as pb;

use crate::{
    BenchError,
    load::connect,
    scenario::{AdminBearer, Clients},
};

/// One setup call taking longer than this ends the run.
const SETUP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The texts of valid API tokens, all sent in every call. Never printed.
#[derive(Clone)]
pub struct ApiTokenBatch(Arc<[String]>);

impl ApiTokenBatch {
    /// The tokens, in the order they were created.
    pub fn tokens(&self) -> &[String] {
        &self.0
    }

    /// How many tokens the batch holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for ApiTokenBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokenBatch({} tokens [redacted])", self.0.len())
    }
}

/// Creates `count` backend API tokens at `endpoint` with `admin`.
pub async fn create_batch(
    endpoint: &str,
    admin: &AdminBearer,
    count: usize,
) -> Result<ApiTokenBatch, BenchError> {
    let channel = connect(endpoint, 1)
        .await?
        .pop()
        .ok_or_else(|| BenchError("no connection to create API tokens over".into()))?;
    let mut clients = Clients::new(channel);
    let mut tokens = Vec::with_capacity(count);
    for index in 0..count {
        let created = clients
            .edge
            .create_api_token(admin.request(pb::CreateApiTokenRequest {
                token_name: format!("bench-{index}"),
                r#type: pb::ApiTokenType::Backend as i32,
                projects: vec!["default".into()],
                environment: "development".into(),
                ..Default::default()
            }));
        let created = match tokio::time::timeout(SETUP_CALL_TIMEOUT, created).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                return Err(BenchError(format!(
                    "CreateApiToken failed during setup: {:?} {}",
                    status.code(),
                    status.message()
                )));
            }
            Err(_) => {
                return Err(BenchError(format!(
                    "CreateApiToken gave no answer within {} s during setup",
                    SETUP_CALL_TIMEOUT.as_secs()
                )));
            }
        };
        tokens.push(created.token);
    }
    Ok(ApiTokenBatch(tokens.into()))
}
