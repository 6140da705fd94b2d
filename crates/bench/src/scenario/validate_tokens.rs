//! EdgeTokenService/ValidateTokens over gRPC with a batch of valid API
//! tokens; every token must come back.

use sigil_proto::v1 as pb;

use crate::{
    api_tokens::ApiTokenBatch,
    scenario::{CallFailure, Clients},
};

/// ValidateTokens of one fixed batch.
pub struct ValidateTokens {
    batch: ApiTokenBatch,
}

impl ValidateTokens {
    /// Sends all of `batch` in each call.
    pub fn new(batch: ApiTokenBatch) -> ValidateTokens {
        ValidateTokens { batch }
    }

    /// One ValidateTokens; fewer tokens back than sent is an error.
    pub async fn call(&self, clients: &mut Clients) -> Result<(), CallFailure> {
        let response = clients
            .edge
            .validate_tokens(pb::ValidateTokensRequest {
                tokens: self.batch.tokens().to_vec(),
            })
            .await?;
        if response.into_inner().tokens.len() == self.batch.len() {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
