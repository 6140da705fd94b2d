//! Issue 8's mixed profile: 90 % reads of one token (half WhoAmI of a
//! session key, half VerifyToken of an EdDSA JWT with keys cached), 9 %
//! ValidateTokens of a batch of [`MIXED_VALIDATE_BATCH`] API tokens over
//! gRPC, 1 % CreateSession + RevokeSession.

use crate::{
    api_tokens::ApiTokenBatch,
    jwts::{Algorithm, JwtPool},
    rng::FastRng,
    scenario::{
        AdminBearer, CallFailure, Clients, ValidateTokens, VerifyMode, VerifyToken, WhoAmI,
        create_revoke,
    },
    sessions::SessionPool,
};

/// API tokens per ValidateTokens call of the mixed profile: a handful, as
/// an Edge proxy revalidating its clients' tokens sends.
pub const MIXED_VALIDATE_BATCH: usize = 10;
/// The algorithm of the mixed profile's JWTs: Sigil's default.
pub const MIXED_JWT_ALGORITHM: Algorithm = Algorithm::EdDsa;

/// Out of 1000 operations: this many WhoAmI...
const WHOAMI_PER_MILLE: usize = 450;
/// ...this many VerifyToken...
const VERIFY_PER_MILLE: usize = 450;
/// ...then this many ValidateTokens; the rest create and revoke.
const VALIDATE_PER_MILLE: usize = 90;

/// The mixed profile.
pub struct Mixed {
    whoami: WhoAmI,
    verify: VerifyToken,
    validate: ValidateTokens,
    admin: AdminBearer,
}

impl Mixed {
    /// Reads from `sessions`, `jwts` (of [`MIXED_JWT_ALGORITHM`]) and
    /// `api_tokens`, writes with `admin`.
    pub fn new(
        sessions: SessionPool,
        jwts: JwtPool,
        api_tokens: ApiTokenBatch,
        admin: AdminBearer,
    ) -> Mixed {
        Mixed {
            whoami: WhoAmI::new(sessions.clone()),
            verify: VerifyToken::new(
                MIXED_JWT_ALGORITHM,
                VerifyMode::SignatureOnly,
                jwts,
                sessions,
            ),
            validate: ValidateTokens::new(api_tokens, MIXED_VALIDATE_BATCH),
            admin,
        }
    }

    /// One operation, drawn by the profile's shares.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let draw = rng.below(1000);
        if draw < WHOAMI_PER_MILLE {
            self.whoami.call(clients, rng).await
        } else if draw < WHOAMI_PER_MILLE + VERIFY_PER_MILLE {
            self.verify.call(clients, rng).await
        } else if draw < WHOAMI_PER_MILLE + VERIFY_PER_MILLE + VALIDATE_PER_MILLE {
            self.validate.call(clients, rng).await
        } else {
            create_revoke::create_and_revoke(clients, &self.admin).await
        }
    }
}
