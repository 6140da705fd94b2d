//! Events: what changed, published so that watchers and caches learn of
//! every change at once. An event names what changed (ids, subject, kid,
//! template name) and never carries a secret.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{ApiTokenId, Error, Result, SessionId, SessionRecord, Subject, Timestamp};

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A session was created (pending its nonce).
    SessionCreated,
    /// A session's nonce was used: it is active.
    SessionAuthorized,
    /// A session's expiry moved later.
    SessionExtended,
    /// A session was revoked.
    SessionRevoked,
    /// Every session of a subject was revoked (each also has its own
    /// `SessionRevoked`); `count` says how many.
    SubjectSessionsRevoked,
    /// An API token was created.
    ApiTokenCreated,
    /// An API token was revoked.
    ApiTokenRevoked,
    /// A new active signing key was made (first use or rotation).
    SigningKeyCreated,
    /// A signing key stopped signing; it stays published until its tokens
    /// expire.
    SigningKeyRetired,
    /// A retired signing key left the JWKS.
    SigningKeyRemoved,
    /// A token template was created or replaced.
    TemplatePut,
    /// A token template was deleted.
    TemplateDeleted,
}

impl EventKind {
    /// Whether events of this kind may change a session's answer, so that
    /// a cache of sessions must forget the session they name.
    pub fn invalidates_session(self) -> bool {
        matches!(
            self,
            EventKind::SessionAuthorized | EventKind::SessionExtended | EventKind::SessionRevoked
        )
    }
}

/// A change, as published: its kind and the ids it concerns. Which fields
/// are set depends on the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The session concerned, for session events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// The subject concerned: a session's subject, if it has one yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// The API token concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_id: Option<ApiTokenId>,
    /// The signing key concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The token template concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// How many things the change touched (sessions revoked for a subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Event {
    /// An event of `kind` with no ids yet.
    pub fn new(kind: EventKind) -> Self {
        Event {
            kind,
            session_id: None,
            subject: None,
            api_token_id: None,
            kid: None,
            template: None,
            count: None,
        }
    }

    /// A change of kind `kind` to the session of `record`.
    pub fn session(kind: EventKind, record: &SessionRecord) -> Self {
        Event {
            session_id: Some(record.session.id),
            subject: record.session.subject.clone(),
            ..Event::new(kind)
        }
    }
}

/// Where an event sits in the feed: events are numbered 1, 2, 3, … without
/// gaps, so a reader can tell a missed event from the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventCursor(pub u64);

impl EventCursor {
    /// The position of the event after this one.
    pub fn next(self) -> EventCursor {
        EventCursor(self.0.saturating_add(1))
    }

    /// Parses a cursor a client sent in field `field`; empty means none.
    pub fn parse_field(text: &str, field: &str) -> Result<Option<EventCursor>> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|()| Error::invalid(field, "is not a cursor this service gave out"))
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for EventCursor {
    type Err = ();

    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        // Digits only: `u64::from_str` would also take a leading `+`.
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        text.parse().map(EventCursor).map_err(drop)
    }
}

/// An event as the store recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the feed.
    pub cursor: EventCursor,
    /// When the store recorded it.
    pub at: Timestamp,
    /// The change.
    pub event: Event,
}

/// Whether `event` is one a watcher asked for: of one of `kinds` (any if
/// empty) and, if `subject` is given, about that subject.
pub fn event_matches(event: &Event, kinds: &[EventKind], subject: Option<&Subject>) -> bool {
    (kinds.is_empty() || kinds.contains(&event.kind))
        && subject.is_none_or(|subject| event.subject.as_ref() == Some(subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_plain_decimal_numbers() {
        assert_eq!(EventCursor::parse_field("", "c").expect("valid"), None);
        assert_eq!(
            EventCursor::parse_field("42", "c").expect("valid"),
            Some(EventCursor(42))
        );
        for bad in ["+1", "-1", "1-0", "x", "99999999999999999999999"] {
            assert!(
                matches!(
                    EventCursor::parse_field(bad, "after_cursor"),
                    Err(Error::InvalidField { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_event_serializes_only_the_fields_it_has() {
        let mut event = Event::new(EventKind::TemplatePut);
        event.template = Some("shop".into());
        let json = serde_json::to_string(&event).expect("valid");
        assert_eq!(json, r#"{"kind":"template_put","template":"shop"}"#);
        assert_eq!(serde_json::from_str::<Event>(&json).expect("valid"), event);
    }

    #[test]
    fn a_watcher_filter_matches_kind_and_subject() {
        let alice = Subject::parse("alice", "subject").expect("valid");
        let bob = Subject::parse("bob", "subject").expect("valid");
        let mut event = Event::new(EventKind::SessionRevoked);
        event.subject = Some(alice.clone());
        assert!(event_matches(&event, &[], None));
        assert!(event_matches(
            &event,
            &[EventKind::SessionRevoked],
            Some(&alice)
        ));
        assert!(!event_matches(&event, &[EventKind::SessionCreated], None));
        assert!(!event_matches(&event, &[], Some(&bob)));
    }
}
