//! Authenticator assurance levels (NIST SP 800-63B AAL1/AAL2, as Ory Kratos
//! names them): how strongly a session's holder proved who they are, and
//! the step-up rule that refuses a weaker session.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How strongly a session's holder authenticated. Ordered: AAL2 is above
/// AAL1.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceLevel {
    /// One factor, such as a password. What a session has unless its
    /// authorization says otherwise, and what records written before levels
    /// existed read as.
    #[default]
    Aal1,
    /// Two factors, such as a password and a one-time code.
    Aal2,
}

impl AssuranceLevel {
    /// `Ok` when a session at this level meets `required`; a session below it
    /// needs a step-up, which is PERMISSION_DENIED, not UNAUTHENTICATED: the
    /// holder is known, just not strongly enough.
    pub fn meets(self, required: Option<AssuranceLevel>) -> Result<()> {
        match required {
            Some(required) if self < required => Err(Error::SessionAal2Required),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(level: AssuranceLevel, required: Option<AssuranceLevel>, expected_ok: bool) {
        assert_eq!(
            level.meets(required).is_ok(),
            expected_ok,
            "{level:?} against {required:?}"
        );
    }

    #[test]
    fn a_level_meets_itself_and_below() {
        use AssuranceLevel::{Aal1, Aal2};
        check(Aal1, None, true);
        check(Aal1, Some(Aal1), true);
        check(Aal1, Some(Aal2), false);
        check(Aal2, None, true);
        check(Aal2, Some(Aal1), true);
        check(Aal2, Some(Aal2), true);
    }
}
