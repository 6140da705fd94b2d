//! EdgeTokenService/ValidateTokens over gRPC with a batch of valid API
//! tokens; every token must come back.

use sigil_proto::v1 as pb;

use crate::{
    api_tokens::ApiTokenBatch,
    rng::FastRng,
    scenario::{CallFailure, Clients},
};

/// ValidateTokens of batches drawn from a pool of valid tokens.
pub struct ValidateTokens {
    pool: ApiTokenBatch,
    size: usize,
}

impl ValidateTokens {
    /// Sends `size` tokens of `pool` in each call, in a row from a random
    /// place (all of `pool` when it holds `size`).
    pub fn new(pool: ApiTokenBatch, size: usize) -> ValidateTokens {
        ValidateTokens {
            size: size.min(pool.len()),
            pool,
        }
    }

    /// One ValidateTokens; fewer tokens back than sent is an error.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let response = clients
            .edge
            .validate_tokens(pb::ValidateTokensRequest {
                tokens: self.pool.window(self.size, rng),
            })
            .await?;
        if response.into_inner().tokens.len() == self.size {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
