//! The mixed profile as far as Sigil has RPCs today: 90 % WhoAmI, 9 %
//! CheckAccess, 1 % CreateSession + RevokeSession. Issue 8's profile is
//! 90 % whoami/verify, 9 % validate, 1 % create/revoke: until VerifyToken
//! and ValidateTokens exist, WhoAmI stands in for verify and CheckAccess
//! (also one store read per call) for validate.

use crate::{
    rng::FastRng,
    scenario::{AdminBearer, CallFailure, CheckAccess, Clients, WhoAmI, create_revoke},
    sessions::SessionPool,
};

/// Out of 1000 operations: this many WhoAmI...
const WHOAMI_PER_MILLE: usize = 900;
/// ...then this many CheckAccess; the rest create and revoke.
const CHECK_ACCESS_PER_MILLE: usize = 90;

/// The mixed profile.
pub struct Mixed {
    whoami: WhoAmI,
    check_access: CheckAccess,
    admin: AdminBearer,
}

impl Mixed {
    /// Reads from `sessions`, writes with `admin`.
    pub fn new(sessions: SessionPool, admin: AdminBearer) -> Mixed {
        Mixed {
            whoami: WhoAmI::new(sessions.clone()),
            check_access: CheckAccess::new(sessions),
            admin,
        }
    }

    /// One operation, drawn by the profile's shares.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let draw = rng.below(1000);
        if draw < WHOAMI_PER_MILLE {
            self.whoami.call(clients, rng).await
        } else if draw < WHOAMI_PER_MILLE + CHECK_ACCESS_PER_MILLE {
            self.check_access.call(clients, rng).await
        } else {
            create_revoke::create_and_revoke(clients, &self.admin).await
        }
    }
}
