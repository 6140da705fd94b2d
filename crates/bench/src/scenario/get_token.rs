//! GetToken: a session mints a JWT of the EdDSA template with its own
//! session key (one store read, one signature).

use sigil_proto::v1 as pb;

use crate::{
    jwts::Algorithm,
    rng::FastRng,
    scenario::{CallFailure, Clients},
    sessions::SessionPool,
};

/// GetToken by session key over a pool of active sessions.
pub struct GetToken {
    sessions: SessionPool,
}

impl GetToken {
    /// Mints for sessions of `sessions`, from the template the setup put.
    pub fn new(sessions: SessionPool) -> GetToken {
        GetToken { sessions }
    }

    /// The template it mints from.
    pub const ALGORITHM: Algorithm = Algorithm::EdDsa;

    /// One GetToken; an empty JWT is an error.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let response = clients
            .issuer
            .get_token(pb::GetTokenRequest {
                session_token: self.sessions.pick(rng).to_owned(),
                template: Self::ALGORITHM.template_name().to_owned(),
                ..Default::default()
            })
            .await?;
        if response.into_inner().jwt.is_empty() {
            Err(CallFailure::UnexpectedAnswer)
        } else {
            Ok(())
        }
    }
}
