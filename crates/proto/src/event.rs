//! Conversions for events.

use sigil_domain::{Error, EventKind, FieldPath, Result, StoredEvent};

use crate::{convert::timestamp_to_pb, v1 as pb};

/// Every kind, with its wire form: the one table both directions use.
const KINDS: [(EventKind, pb::EventKind); 12] = [
    (EventKind::SessionCreated, pb::EventKind::SessionCreated),
    (
        EventKind::SessionAuthorized,
        pb::EventKind::SessionAuthorized,
    ),
    (EventKind::SessionExtended, pb::EventKind::SessionExtended),
    (EventKind::SessionRevoked, pb::EventKind::SessionRevoked),
    (
        EventKind::SubjectSessionsRevoked,
        pb::EventKind::SubjectSessionsRevoked,
    ),
    (EventKind::ApiTokenCreated, pb::EventKind::ApiTokenCreated),
    (EventKind::ApiTokenRevoked, pb::EventKind::ApiTokenRevoked),
    (
        EventKind::SigningKeyCreated,
        pb::EventKind::SigningKeyCreated,
    ),
    (
        EventKind::SigningKeyRetired,
        pb::EventKind::SigningKeyRetired,
    ),
    (
        EventKind::SigningKeyRemoved,
        pb::EventKind::SigningKeyRemoved,
    ),
    (EventKind::TemplatePut, pb::EventKind::TemplatePut),
    (EventKind::TemplateDeleted, pb::EventKind::TemplateDeleted),
];

impl From<EventKind> for pb::EventKind {
    fn from(kind: EventKind) -> Self {
        KINDS
            .iter()
            .find(|(domain, _)| *domain == kind)
            .map_or(pb::EventKind::Unspecified, |(_, wire)| *wire)
    }
}

/// The kinds a watcher asked for in `field`, or INVALID_ARGUMENT naming
/// the entry that is not a kind.
pub fn event_kinds_from_pb(kinds: &[i32], field: &str) -> Result<Vec<EventKind>> {
    let field = FieldPath::from(field);
    kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            KINDS
                .iter()
                .find(|(_, wire)| *wire as i32 == *kind)
                .map(|(domain, _)| *domain)
                .ok_or_else(|| Error::invalid(field.at(index), "must be an event kind"))
        })
        .collect()
}

impl From<&StoredEvent> for pb::Event {
    fn from(stored: &StoredEvent) -> Self {
        let event = &stored.event;
        pb::Event {
            cursor: stored.cursor.to_string(),
            kind: pb::EventKind::from(event.kind).into(),
            time: Some(timestamp_to_pb(stored.at)),
            session_id: event
                .session_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            subject: event
                .subject
                .as_ref()
                .map(|subject| subject.as_str().to_owned())
                .unwrap_or_default(),
            api_token_id: event
                .api_token_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            kid: event.kid.clone().unwrap_or_default(),
            template: event.template.clone().unwrap_or_default(),
            count: event.count.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_wire_value() {
        let mut wire: Vec<i32> = KINDS.iter().map(|(_, kind)| *kind as i32).collect();
        wire.sort_unstable();
        wire.dedup();
        assert_eq!(wire.len(), KINDS.len());
        assert!(!wire.contains(&(pb::EventKind::Unspecified as i32)));
        let round_trip = event_kinds_from_pb(&wire, "kinds").expect("valid");
        assert_eq!(round_trip.len(), KINDS.len());
    }

    #[test]
    fn unspecified_and_unknown_kinds_name_their_entry() {
        for bad in [0, 99] {
            match event_kinds_from_pb(&[1, bad], "kinds") {
                Err(Error::InvalidField { field, .. }) => assert_eq!(field.as_str(), "kinds[1]"),
                other => panic!("{other:?}"),
            }
        }
    }
}
