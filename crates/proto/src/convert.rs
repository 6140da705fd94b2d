//! Conversions between wire types and domain types. Requests convert by
//! destructuring the whole message, so a field added to the proto does not
//! compile until it is handled here.

use std::time::Duration;

use sigil_domain::{
    AccessDecision, AccessRule, AssuranceLevel, Authorization, Error, Extension, FieldPath,
    NewSession, Result, Session, SessionState, Timestamp,
};

use crate::v1 as pb;

mod api_token;

pub use api_token::{api_token_filter, api_token_type_from_pb};

/// A wire timestamp as a domain timestamp, or INVALID_ARGUMENT for `field`.
pub fn timestamp_from_pb(timestamp: prost_types::Timestamp, field: &str) -> Result<Timestamp> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(Error::invalid(
            field,
            "nanos must be within 0 to 999,999,999",
        ));
    }
    let millis = timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|millis| millis.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .ok_or_else(|| Error::invalid(field, "is out of range"))?;
    Ok(Timestamp::from_unix_ms(millis))
}

/// A domain timestamp on the wire.
pub fn timestamp_to_pb(timestamp: Timestamp) -> prost_types::Timestamp {
    let millis = timestamp.unix_ms();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        // Always below 1e9, so the cast cannot truncate.
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A wire duration as a positive std duration, or INVALID_ARGUMENT for
/// `field`.
pub fn duration_from_pb(duration: prost_types::Duration, field: &str) -> Result<Duration> {
    if duration.seconds < 0 || duration.nanos < 0 || duration.nanos >= 1_000_000_000 {
        return Err(Error::invalid(field, "must be a positive duration"));
    }
    Ok(Duration::new(
        duration.seconds.unsigned_abs(),
        duration.nanos.unsigned_abs(),
    ))
}

impl From<&Session> for pb::Session {
    fn from(session: &Session) -> Self {
        pb::Session {
            id: session.id.to_string(),
            subject: session
                .subject
                .as_ref()
                .map(|subject| subject.as_str().to_owned())
                .unwrap_or_default(),
            state: pb::SessionState::from(session.state).into(),
            permissions: session
                .permissions
                .iter()
                .map(|permission| permission.as_str().to_owned())
                .collect(),
            rules: session.rules.iter().map(pb::AccessRule::from).collect(),
            metadata: session.metadata.clone().into_iter().collect(),
            created_at: Some(timestamp_to_pb(session.created_at)),
            authorized_at: session.authorized_at.map(timestamp_to_pb),
            expires_at: Some(timestamp_to_pb(session.expires_at)),
            revoked_at: session.revoked_at.map(timestamp_to_pb),
            assurance_level: pb::AssuranceLevel::from(session.assurance_level).into(),
        }
    }
}

impl From<AssuranceLevel> for pb::AssuranceLevel {
    fn from(level: AssuranceLevel) -> Self {
        match level {
            AssuranceLevel::Aal1 => pb::AssuranceLevel::Aal1,
            AssuranceLevel::Aal2 => pb::AssuranceLevel::Aal2,
        }
    }
}

/// A list filter of session states at `field`, each state once, in
/// lifecycle order. UNSPECIFIED or an unknown number is INVALID_ARGUMENT
/// naming the entry.
pub fn session_states_from_pb(states: &[i32], field: &str) -> Result<Vec<SessionState>> {
    let field = FieldPath::from(field);
    let mut parsed = Vec::with_capacity(states.len());
    for (index, state) in states.iter().enumerate() {
        let state = match pb::SessionState::try_from(*state) {
            Ok(pb::SessionState::Pending) => SessionState::Pending,
            Ok(pb::SessionState::Active) => SessionState::Active,
            Ok(pb::SessionState::Revoked) => SessionState::Revoked,
            Ok(pb::SessionState::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    field.at(index),
                    "must be PENDING, ACTIVE or REVOKED",
                ));
            }
        };
        if !parsed.contains(&state) {
            parsed.push(state);
        }
    }
    parsed.sort_by_key(|state| pb::SessionState::from(*state) as i32);
    Ok(parsed)
}

/// A wire assurance level at `field`: `None` for UNSPECIFIED,
/// INVALID_ARGUMENT for a number that names no level.
pub fn assurance_level_from_pb(level: i32, field: &str) -> Result<Option<AssuranceLevel>> {
    match pb::AssuranceLevel::try_from(level) {
        Ok(pb::AssuranceLevel::Unspecified) => Ok(None),
        Ok(pb::AssuranceLevel::Aal1) => Ok(Some(AssuranceLevel::Aal1)),
        Ok(pb::AssuranceLevel::Aal2) => Ok(Some(AssuranceLevel::Aal2)),
        Err(_) => Err(Error::invalid(field, "is not an assurance level")),
    }
}

impl From<SessionState> for pb::SessionState {
    fn from(state: SessionState) -> Self {
        match state {
            SessionState::Pending => pb::SessionState::Pending,
            SessionState::Active => pb::SessionState::Active,
            SessionState::Revoked => pb::SessionState::Revoked,
        }
    }
}

impl From<&AccessRule> for pb::AccessRule {
    fn from(rule: &AccessRule) -> Self {
        pb::AccessRule {
            priority: rule.priority,
            description: rule.description.clone(),
            resource: rule.resource.as_str().to_owned(),
            permissions: rule
                .permissions
                .iter()
                .map(|permission| permission.as_str().to_owned())
                .collect(),
        }
    }
}

/// A wire access rule at `field`, checked.
pub fn access_rule_from_pb(rule: pb::AccessRule, field: &FieldPath) -> Result<AccessRule> {
    let pb::AccessRule {
        priority,
        description,
        resource,
        permissions,
    } = rule;
    AccessRule::new(priority, description, &resource, &permissions, field)
}

impl TryFrom<pb::CreateSessionRequest> for NewSession {
    type Error = Error;

    fn try_from(request: pb::CreateSessionRequest) -> Result<Self> {
        let pb::CreateSessionRequest {
            subject,
            metadata,
            pending_ttl,
        } = request;
        let pending_ttl = pending_ttl
            .map(|ttl| duration_from_pb(ttl, "pending_ttl"))
            .transpose()?;
        NewSession::new(&subject, metadata, pending_ttl)
    }
}

impl TryFrom<pb::AuthorizeSessionRequest> for Authorization {
    type Error = Error;

    fn try_from(request: pb::AuthorizeSessionRequest) -> Result<Self> {
        let pb::AuthorizeSessionRequest {
            nonce,
            permissions,
            rules,
            expires_at,
            subject,
            assurance_level,
        } = request;
        // Unspecified is AAL1: a backend that knows nothing of levels
        // authorizes with one factor.
        let assurance_level =
            assurance_level_from_pb(assurance_level, "assurance_level")?.unwrap_or_default();
        let rules_field = FieldPath::from("rules");
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| access_rule_from_pb(rule, &rules_field.at(index)))
            .collect::<Result<Vec<_>>>()?;
        let expires_at = expires_at
            .map(|at| timestamp_from_pb(at, "expires_at"))
            .transpose()?;
        Authorization::new(
            &nonce,
            &permissions,
            rules,
            expires_at,
            &subject,
            assurance_level,
        )
    }
}

impl TryFrom<pb::ExtendSessionRequest> for Extension {
    type Error = Error;

    fn try_from(request: pb::ExtendSessionRequest) -> Result<Self> {
        let pb::ExtendSessionRequest {
            session_id: _,
            lifespan,
        } = request;
        Extension::new(
            lifespan
                .map(|lifespan| duration_from_pb(lifespan, "lifespan"))
                .transpose()?,
        )
    }
}

impl pb::CheckAccessResponse {
    /// The answer for `session` given `decision`.
    pub fn new(session: &Session, decision: &AccessDecision<'_>) -> Self {
        let deciding_rule = match decision {
            AccessDecision::GrantedByRule(rule) | AccessDecision::DeniedByRule(rule) => {
                Some(pb::AccessRule::from(*rule))
            }
            AccessDecision::GrantedByPermission | AccessDecision::Denied => None,
        };
        pb::CheckAccessResponse {
            allowed: decision.is_allowed(),
            session_id: session.id.to_string(),
            subject: session
                .subject
                .as_ref()
                .map(|subject| subject.as_str().to_owned())
                .unwrap_or_default(),
            granted_by_permission: matches!(decision, AccessDecision::GrantedByPermission),
            deciding_rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_the_wire() {
        for millis in [0, 1, 999, 1_000, 1_764_000_000_123, -1, -1_001] {
            let timestamp = Timestamp::from_unix_ms(millis);
            assert_eq!(
                timestamp_from_pb(timestamp_to_pb(timestamp), "t").ok(),
                Some(timestamp)
            );
        }
    }

    #[test]
    fn negative_duration_is_invalid() {
        let duration = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert!(matches!(
            duration_from_pb(duration, "lifespan"),
            Err(Error::InvalidField { .. })
        ));
    }
}
