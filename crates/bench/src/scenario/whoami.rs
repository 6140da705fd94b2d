//! WhoAmI with a token drawn at random from the pre-created sessions, so
//! the store is read all over rather than one hot key.

use sigil_proto::v1 as pb;

use crate::{
    rng::FastRng,
    scenario::{CallFailure, Clients},
    sessions::SessionPool,
};

/// WhoAmI over a pool of active sessions.
pub struct WhoAmI {
    sessions: SessionPool,
}

impl WhoAmI {
    /// Draws tokens from `sessions`.
    pub fn new(sessions: SessionPool) -> WhoAmI {
        WhoAmI { sessions }
    }

    /// One WhoAmI; every session in the pool is active, so each must answer
    /// with a session.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let response = clients
            .validator
            .who_am_i(pb::WhoAmIRequest {
                session_token: self.sessions.pick(rng).to_owned(),
                ..Default::default()
            })
            .await?;
        if response.into_inner().session.is_some() {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
