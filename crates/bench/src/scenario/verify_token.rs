//! VerifyToken of JWTs minted before the measurement, one template per
//! algorithm. With `consume_jti` each token verifies once, so each
//! operation mints a fresh one with GetToken and then verifies it: the two
//! calls count as one operation (subtract `get-token` to see the verify).

use sigil_proto::v1 as pb;

use crate::{
    jwts::{Algorithm, JwtPool},
    rng::FastRng,
    scenario::{CallFailure, Clients},
    sessions::SessionPool,
};

/// What VerifyToken is asked to check beyond the signature and claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Signature and claims only: keys are cached, nothing is read from
    /// the store.
    SignatureOnly,
    /// Also that the token's session is active (`check_session`: one store
    /// read).
    CheckSession,
    /// Also consume the token's `jti` (`consume_jti`: one store write), on
    /// a token minted just before.
    ConsumeJti,
}

/// VerifyToken of one template's JWTs.
pub struct VerifyToken {
    algorithm: Algorithm,
    mode: VerifyMode,
    jwts: JwtPool,
    sessions: SessionPool,
}

impl VerifyToken {
    /// Verifies `jwts` (of `algorithm`'s template) as `mode` says; for
    /// [`VerifyMode::ConsumeJti`], mints fresh ones for `sessions` instead.
    pub fn new(
        algorithm: Algorithm,
        mode: VerifyMode,
        jwts: JwtPool,
        sessions: SessionPool,
    ) -> VerifyToken {
        VerifyToken {
            algorithm,
            mode,
            jwts,
            sessions,
        }
    }

    /// The algorithm and the JWTs minted for it before the measurement.
    pub fn sample(&self) -> (Algorithm, &JwtPool) {
        (self.algorithm, &self.jwts)
    }

    /// One verification (preceded by a GetToken for `consume_jti`); an
    /// answer without a subject is an error.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let jwt = match self.mode {
            VerifyMode::ConsumeJti => {
                clients
                    .issuer
                    .get_token(pb::GetTokenRequest {
                        session_token: self.sessions.pick(rng).to_owned(),
                        template: self.algorithm.template_name().to_owned(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .jwt
            }
            VerifyMode::SignatureOnly | VerifyMode::CheckSession => self.jwts.pick(rng).to_owned(),
        };
        let response = clients
            .validator
            .verify_token(pb::VerifyTokenRequest {
                jwt,
                consume_jti: self.mode == VerifyMode::ConsumeJti,
                check_session: self.mode == VerifyMode::CheckSession,
                ..Default::default()
            })
            .await?;
        if response.into_inner().subject.is_empty() {
            Err(CallFailure::UnexpectedAnswer)
        } else {
            Ok(())
        }
    }
}
