//! BatchVerifyTokens with a batch of JWTs drawn at random from those minted
//! before the measurement: signatures and claims only, no store call.

use sigil_proto::v1 as pb;

use crate::{
    jwts::JwtPool,
    rng::FastRng,
    scenario::{CallFailure, Clients},
};

/// BatchVerifyTokens over a pool of valid JWTs of one template.
pub struct BatchVerifyTokens {
    jwts: JwtPool,
    size: usize,
}

impl BatchVerifyTokens {
    /// Batches of `size` JWTs drawn from `jwts`.
    pub fn new(jwts: JwtPool, size: usize) -> BatchVerifyTokens {
        BatchVerifyTokens { jwts, size }
    }

    /// The JWTs drawn from.
    pub fn jwts(&self) -> &JwtPool {
        &self.jwts
    }

    /// One BatchVerifyTokens; every JWT of the pool is valid, so every
    /// entry must answer with a verified token.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let jwts = (0..self.size)
            .map(|_| self.jwts.pick(rng).to_owned())
            .collect();
        let response = clients
            .validator
            .batch_verify_tokens(pb::BatchVerifyTokensRequest {
                jwts,
                ..Default::default()
            })
            .await?
            .into_inner();
        let all_valid = response.results.len() == self.size
            && response.results.iter().all(|result| {
                matches!(
                    result.result,
                    Some(pb::batch_verify_tokens_result::Result::Token(_))
                )
            });
        if all_valid {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
