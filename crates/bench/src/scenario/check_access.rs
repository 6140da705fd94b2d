//! CheckAccess over the pre-created sessions, cycling through the four ways
//! a decision is made; each answer is checked against the expected one.

use sigil_proto::v1 as pb;

use crate::{
    rng::FastRng,
    scenario::{CallFailure, Clients},
    sessions::{self, SessionPool},
};

/// One question and its right answer for a session made by
/// [`sessions::authorization`].
struct Case {
    permission: &'static str,
    resource: &'static str,
    allowed: bool,
}

/// Which case decides how: a held permission, a matching rule that lists
/// the permission, a matching rule that does not, no matching rule.
const CASES: [Case; 4] = [
    Case {
        permission: sessions::HELD_PERMISSION,
        resource: "accounts/42",
        allowed: true,
    },
    Case {
        permission: sessions::RULE_PERMISSION,
        resource: "tokens/pci/4111",
        allowed: true,
    },
    Case {
        permission: sessions::RULE_PERMISSION,
        resource: "tokens/public/feed/7",
        allowed: false,
    },
    Case {
        permission: sessions::RULE_PERMISSION,
        resource: "accounts/42",
        allowed: false,
    },
];

/// CheckAccess over a pool of active sessions.
pub struct CheckAccess {
    sessions: SessionPool,
}

impl CheckAccess {
    /// Draws tokens from `sessions`.
    pub fn new(sessions: SessionPool) -> CheckAccess {
        CheckAccess { sessions }
    }

    /// One CheckAccess of a random case; a wrong decision is an error.
    pub async fn call(&self, clients: &mut Clients, rng: &mut FastRng) -> Result<(), CallFailure> {
        let case = &CASES[rng.below(CASES.len())];
        let response = clients
            .validator
            .check_access(pb::CheckAccessRequest {
                session_token: self.sessions.pick(rng).to_owned(),
                permission: case.permission.to_owned(),
                resource: case.resource.to_owned(),
                ..Default::default()
            })
            .await?;
        if response.into_inner().allowed == case.allowed {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
