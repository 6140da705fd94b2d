//! Sessions and their lifecycle: create (PENDING) → authorize with the
//! nonce (ACTIVE) → extend → revoke (REVOKED), or expire.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};

use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    AccessRule, AssuranceLevel, Error, Nonce, Permission, Result, SecretHash, SessionKey, Timestamp,
};

/// Most metadata entries on one session.
pub const MAX_METADATA_ENTRIES: usize = 32;

/// A session's id, `sess_` and 32 hex digits: a handle, never a secret.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    const PREFIX: &'static str = "sess_";

    /// A fresh random id.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// The id with these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        SessionId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Reads an id from a request field.
    pub fn parse_field(text: &str, field: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        text.parse()
            .map_err(|_| Error::invalid(field, "must be `sess_` and 32 lowercase hex digits"))
    }
}

/// A string that is not a session id.
#[derive(Debug)]
pub struct NotASessionId;

impl FromStr for SessionId {
    type Err = NotASessionId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix(Self::PREFIX).ok_or(NotASessionId)?;
        if digits.len() != 32 || digits.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(NotASessionId);
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| NotASessionId)?;
        Ok(SessionId(bytes))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::id_text::write_id(f, Self::PREFIX, &self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::id_text::deserialize_text(deserializer, "a session id", |text| text.parse().ok())
    }
}

/// Who a session belongs to: the caller's own user id, 1 to 256 characters
/// with no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    /// Reads an optional subject: empty means none.
    pub fn parse_optional(text: &str, field: &str) -> Result<Option<Self>> {
        if text.is_empty() {
            return Ok(None);
        }
        Subject::parse(text, field).map(Some)
    }

    /// Reads a required subject.
    pub fn parse(text: &str, field: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        if text.chars().count() > 256 {
            return Err(Error::invalid(field, "at most 256 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::invalid(field, "may not hold control characters"));
        }
        Ok(Subject(text.to_owned()))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a session is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Created; grants nothing until authorized.
    Pending,
    /// Authorized, until it expires or is revoked.
    Active,
    /// Revoked; grants nothing.
    Revoked,
}

/// A session as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session's handle.
    pub id: SessionId,
    /// Who it belongs to, if anyone was named.
    pub subject: Option<Subject>,
    /// Where it is in its lifecycle.
    pub state: SessionState,
    /// Permissions held on every resource.
    pub permissions: Vec<Permission>,
    /// Access rules in evaluation order.
    pub rules: Vec<AccessRule>,
    /// Caller-supplied context, never interpreted.
    pub metadata: BTreeMap<String, String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was authorized.
    pub authorized_at: Option<Timestamp>,
    /// When it stops being valid (for a pending session: its nonce).
    pub expires_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// How strongly its holder authenticated; AAL1 for records written
    /// before levels existed.
    #[serde(default)]
    pub assurance_level: AssuranceLevel,
}

/// A session as the store keeps it: the session, the hashes of its secrets,
/// and a revision for compare-and-swap updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Bumped by every change; a store replaces a record only if the stored
    /// revision is the one the change started from.
    pub revision: u64,
    /// The session.
    pub session: Session,
    /// Hash of the session key's secret.
    pub key_hash: SecretHash,
    /// Hash of the nonce's secret while the nonce is unused.
    pub nonce_hash: Option<SecretHash>,
    /// For a revoked session: when the store may forget it, if before its
    /// expiry. Absent in records written before retention existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<Timestamp>,
}

/// Lifetimes the operator configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// How long a nonce lasts when the request does not say.
    pub default_pending_ttl: Duration,
    /// The longest a nonce may last.
    pub max_pending_ttl: Duration,
    /// How long an authorized session lasts when the request does not say.
    pub default_lifespan: Duration,
    /// The longest an authorized session may last from now.
    pub max_lifespan: Duration,
    /// Extend only a session that expires within this long from now (Ory
    /// Kratos' `earliest_possible_extend`); earlier calls leave it as it is.
    /// `None`: any time.
    pub earliest_possible_extend: Option<Duration>,
    /// How long a revoked session stays visible to admins (GetSession,
    /// ListSessions) after its revocation, at most until its expiry.
    pub revoked_retention: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            default_pending_ttl: Duration::from_secs(3 * 60),
            max_pending_ttl: Duration::from_secs(60 * 60),
            default_lifespan: Duration::from_secs(24 * 60 * 60),
            max_lifespan: Duration::from_secs(30 * 24 * 60 * 60),
            earliest_possible_extend: None,
            revoked_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A checked request to create a session.
#[derive(Debug, Clone)]
pub struct NewSession {
    subject: Option<Subject>,
    metadata: BTreeMap<String, String>,
    pending_ttl: Option<Duration>,
}

impl NewSession {
    /// Checks the request's fields.
    pub fn new(
        subject: &str,
        metadata: impl IntoIterator<Item = (String, String)>,
        pending_ttl: Option<Duration>,
    ) -> Result<Self> {
        let subject = Subject::parse_optional(subject, "subject")?;
        let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
        if metadata.len() > MAX_METADATA_ENTRIES {
            return Err(Error::invalid("metadata", "at most 32 entries"));
        }
        for (key, value) in &metadata {
            let key_ok = (1..=64).contains(&key.len())
                && key
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
            if !key_ok {
                return Err(Error::invalid(
                    "metadata",
                    "keys are 1 to 64 characters of A-Z a-z 0-9 _ . -",
                ));
            }
            if value.chars().count() > 512 {
                return Err(Error::invalid(
                    "metadata",
                    format!("value of `{key}` is over 512 characters"),
                ));
            }
        }
        if pending_ttl.is_some_and(|ttl| ttl < Duration::from_secs(1)) {
            return Err(Error::invalid("pending_ttl", "must be at least 1 second"));
        }
        Ok(NewSession {
            subject,
            metadata,
            pending_ttl,
        })
    }

    /// Creates the PENDING session with fresh secrets. The secrets are
    /// returned once, here; the record holds only their hashes.
    pub fn issue(
        self,
        policy: &SessionPolicy,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(SessionRecord, SessionKey, Nonce)> {
        let pending_ttl = self.pending_ttl.unwrap_or(policy.default_pending_ttl);
        if pending_ttl > policy.max_pending_ttl {
            return Err(Error::invalid(
                "pending_ttl",
                format!("at most {}s", policy.max_pending_ttl.as_secs()),
            ));
        }
        let id = SessionId::generate(rng);
        let key = SessionKey::generate(id, rng);
        let nonce = Nonce::generate(id, rng);
        let record = SessionRecord {
            revision: 1,
            retain_until: None,
            key_hash: key.hash(),
            nonce_hash: Some(nonce.hash()),
            session: Session {
                id,
                subject: self.subject,
                state: SessionState::Pending,
                permissions: Vec::new(),
                rules: Vec::new(),
                metadata: self.metadata,
                created_at: now,
                authorized_at: None,
                expires_at: now.plus(pending_ttl),
                revoked_at: None,
                assurance_level: AssuranceLevel::Aal1,
            },
        };
        Ok((record, key, nonce))
    }
}

/// A checked request to authorize a pending session.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The nonce presented.
    pub nonce: Nonce,
    permissions: Vec<Permission>,
    rules: Vec<AccessRule>,
    expires_at: Option<Timestamp>,
    subject: Option<Subject>,
    assurance_level: AssuranceLevel,
}

impl Authorization {
    /// Checks the request's fields; `rules` are already checked one by one.
    pub fn new(
        nonce: &str,
        permissions: &[String],
        rules: Vec<AccessRule>,
        expires_at: Option<Timestamp>,
        subject: &str,
        assurance_level: AssuranceLevel,
    ) -> Result<Self> {
        let permissions = Permission::parse_list(permissions, &"permissions".into())?;
        let rules = AccessRule::into_evaluation_order(rules, &"rules".into())?;
        if permissions.is_empty() && rules.is_empty() {
            return Err(Error::invalid(
                "permissions",
                "either permissions or rules must be given",
            ));
        }
        let subject = Subject::parse_optional(subject, "subject")?;
        let nonce = Nonce::parse_presented(nonce)?;
        Ok(Authorization {
            nonce,
            permissions,
            rules,
            expires_at,
            subject,
            assurance_level,
        })
    }
}

/// A checked request to extend a session.
#[derive(Debug, Clone, Copy)]
pub struct Extension {
    lifespan: Option<Duration>,
}

impl Extension {
    /// Checks the request's fields.
    pub fn new(lifespan: Option<Duration>) -> Result<Self> {
        if lifespan.is_some_and(|lifespan| lifespan.is_zero()) {
            return Err(Error::invalid("lifespan", "must be positive"));
        }
        Ok(Extension { lifespan })
    }
}

impl SessionRecord {
    /// The authorized record, if `authorization` holds this session's
    /// unused, unexpired nonce. Anything else is NOT_FOUND, with no hint of
    /// which, so a nonce cannot be probed.
    pub fn authorize(
        &self,
        authorization: &Authorization,
        policy: &SessionPolicy,
        now: Timestamp,
    ) -> Result<SessionRecord> {
        let expires_at = match authorization.expires_at {
            None => now.plus(policy.default_lifespan),
            Some(at) if at <= now => return Err(Error::invalid("expires_at", "is in the past")),
            Some(at) if at > now.plus(policy.max_lifespan) => {
                return Err(Error::invalid(
                    "expires_at",
                    format!(
                        "is beyond the maximum lifespan of {}s",
                        policy.max_lifespan.as_secs()
                    ),
                ));
            }
            Some(at) => at,
        };
        let nonce_matches = self
            .nonce_hash
            .is_some_and(|hash| hash.matches(&authorization.nonce.hash()));
        let session = &self.session;
        if !nonce_matches || session.state != SessionState::Pending || session.expires_at <= now {
            return Err(Error::NonceNotFound);
        }
        let mut next = self.next_revision();
        next.nonce_hash = None;
        next.session.state = SessionState::Active;
        next.session.permissions = authorization.permissions.clone();
        next.session.rules = authorization.rules.clone();
        next.session.authorized_at = Some(now);
        next.session.expires_at = expires_at;
        next.session.assurance_level = authorization.assurance_level;
        if let Some(subject) = &authorization.subject {
            next.session.subject = Some(subject.clone());
        }
        Ok(next)
    }

    /// The record with a later expiry, or `None` when the session expires
    /// later than the policy's `earliest_possible_extend` from now, so it is
    /// too early to extend it. Never shortens a session, never sets an
    /// expiry beyond the maximum lifespan from now.
    pub fn extend(
        &self,
        extension: Extension,
        policy: &SessionPolicy,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>> {
        let lifespan = extension.lifespan.unwrap_or(policy.default_lifespan);
        if lifespan > policy.max_lifespan {
            return Err(Error::invalid(
                "lifespan",
                format!(
                    "at most the maximum lifespan of {}s",
                    policy.max_lifespan.as_secs()
                ),
            ));
        }
        if !self.is_active(now) {
            return Err(Error::SessionNotActive);
        }
        if let Some(window) = policy.earliest_possible_extend
            && self.session.expires_at > now.plus(window)
        {
            return Ok(None);
        }
        let mut next = self.next_revision();
        next.session.expires_at = self.session.expires_at.max(now.plus(lifespan));
        Ok(Some(next))
    }

    /// The revoked record, kept for the policy's `revoked_retention`, or
    /// `None` when it is revoked already.
    pub fn revoke(&self, policy: &SessionPolicy, now: Timestamp) -> Option<SessionRecord> {
        if self.session.state == SessionState::Revoked {
            return None;
        }
        let mut next = self.next_revision();
        next.nonce_hash = None;
        next.session.state = SessionState::Revoked;
        next.session.revoked_at = Some(now);
        next.retain_until = Some(now.plus(policy.revoked_retention));
        Some(next)
    }

    /// The session, if `key` is its key and the session is ACTIVE and
    /// unexpired at `now`.
    pub fn authenticate(&self, key: &SessionKey, now: Timestamp) -> Result<&Session> {
        // Compare the hash first and always, so the answer's timing does not
        // depend on the session's state.
        let key_matches = self.key_hash.matches(&key.hash());
        if key_matches && self.session.id == key.session_id() && self.is_active(now) {
            Ok(&self.session)
        } else {
            Err(Error::SessionInvalid)
        }
    }

    /// Whether the session is ACTIVE and unexpired at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.session.state == SessionState::Active && self.session.expires_at > now
    }

    /// When the store may forget the record: at expiry, or sooner once a
    /// revoked session's retention is over.
    pub fn evict_at(&self) -> Timestamp {
        match self.retain_until {
            Some(until) => until.min(self.session.expires_at),
            None => self.session.expires_at,
        }
    }

    fn next_revision(&self) -> SessionRecord {
        let mut next = self.clone();
        next.revision += 1;
        next
    }
}

#[cfg(test)]
mod tests;
