//! BatchWhoAmI with a batch of tokens drawn at random from the pre-created
//! sessions: one store round trip for the whole batch.

use sigil_proto::v1 as pb;

use crate::{
    rng::FastRng,
    scenario::{CallFailure, Clients},
    sessions::SessionPool,
};

/// BatchWhoAmI over a pool of active sessions.
pub struct BatchWhoAmI {
    sessions: SessionPool,
    size: usize,
}

impl BatchWhoAmI {
    /// Batches of `size` tokens drawn from `sessions`.
    pub fn new(sessions: SessionPool, size: usize) -> BatchWhoAmI {
        BatchWhoAmI { sessions, size }
    }

    /// One BatchWhoAmI; every session in the pool is active, so every entry
    /// must answer with a session.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let tokens = (0..self.size)
            .map(|_| self.sessions.pick(rng).to_owned())
            .collect();
        let response = clients
            .validator
            .batch_who_am_i(pb::BatchWhoAmIRequest {
                tokens,
                ..Default::default()
            })
            .await?
            .into_inner();
        let all_valid = response.results.len() == self.size
            && response.results.iter().all(|result| {
                matches!(
                    result.result,
                    Some(pb::batch_who_am_i_result::Result::Session(_))
                )
            });
        if all_valid {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
