//! Personal values (DESIGN §11): kept out of the events, each with its own opening in
//! `personal_data`, with a salted commitment in its place in the stored event.
//!
//! On append, [`seal`] swaps each personal field of a payload or metadata for its commitment
//! and hands back the rows that hold the clear values. On read, an event's [`Personal`]
//! (the values, or `None` where erased) opens the stored payload and metadata again.

use crate::tlog::leaf::{commit, commitment_in, commitment_json, new_opening};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};

/// What an erased value reads as.
pub const ERASED: &str = "[erased]";

/// The metadata field naming who wrote an event.
pub const ACTOR: &str = "actor";

/// Commitments whose values this process has seen erased while it runs. Events read from the
/// database carry their erased values as erased; events already in memory (the live feed's
/// broadcast, a subscriber's queue) were opened before, and are checked against this when
/// read, so that they too answer `[erased]` from the moment the erasure is known here: at
/// once in the process that erased, within the live feed's delay in every other.
static FORGOTTEN: LazyLock<RwLock<HashSet<[u8; 32]>>> = LazyLock::new(Default::default);

/// Whether [`FORGOTTEN`] holds anything (most processes never erase: reads skip the lock).
static ANY_FORGOTTEN: AtomicBool = AtomicBool::new(false);

/// Marks values erased by their commitments, for events already opened in memory.
pub fn forget(commitments: impl IntoIterator<Item = [u8; 32]>) {
    let mut set = FORGOTTEN.write().unwrap_or_else(|p| p.into_inner());
    set.extend(commitments);
    ANY_FORGOTTEN.store(!set.is_empty(), Ordering::Release);
}

/// Marks erased the commitments a `PersonalDataErased` payload names.
pub fn forget_erasure(payload: &Value) {
    let commitments = payload
        .get("commitments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| STANDARD.decode(c.as_str()?).ok()?.try_into().ok());
    forget(commitments);
}

/// Whether the commitment in a stored field's slot stands for a value known to be erased.
pub fn is_forgotten(slot: Option<&Value>) -> bool {
    if !ANY_FORGOTTEN.load(Ordering::Acquire) {
        return false;
    }
    let Some(commitment) = slot.and_then(commitment_in) else {
        return false;
    };
    FORGOTTEN
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&commitment)
}

/// The personal fields of payloads, by event type (top-level members only).
pub const PAYLOAD_FIELDS: &[(&str, &str)] = &[("EvidenceSubmitted", "submittedBy")];

/// The personal payload fields of an event type.
pub fn payload_fields(event_type: &str) -> impl Iterator<Item = &'static str> + '_ {
    PAYLOAD_FIELDS
        .iter()
        .filter(move |(t, _)| *t == event_type)
        .map(|(_, f)| *f)
}

/// One personal value to store beside its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalRow {
    /// `actor` or a payload field's name.
    pub field: &'static str,
    /// The random opening of its commitment.
    pub opening: Vec<u8>,
    /// The clear value.
    pub value: String,
}

/// Swaps every personal field of an event for a commitment under a fresh opening, and
/// returns the rows that keep the values.
pub fn seal(event_type: &str, payload: &mut Value, metadata: &mut Value) -> Vec<PersonalRow> {
    let mut rows = Vec::new();
    let mut swap = |field: &'static str, slot: Option<&mut Value>| {
        if let Some(slot) = slot
            && let Some(value) = slot.as_str()
        {
            let opening = new_opening();
            let value = value.to_owned();
            *slot = commitment_json(&commit(&opening, &value));
            rows.push(PersonalRow {
                field,
                opening: opening.to_vec(),
                value,
            });
        }
    };
    for field in payload_fields(event_type) {
        swap(field, payload.get_mut(field));
    }
    swap(ACTOR, metadata.get_mut(ACTOR));
    rows
}

/// The personal values of one stored event: each field's value, or `None` where erased.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Personal(pub Vec<(String, Option<String>)>);

impl Personal {
    /// Reads the `personal` column (`{"field": value-or-null}`), absent for none.
    pub fn from_json(value: Option<Value>) -> Self {
        let Some(Value::Object(map)) = value else {
            return Self::default();
        };
        // A JSON object's members come in key order, as `from_rows` sorts them.
        Self(
            map.into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_owned)))
                .collect(),
        )
    }

    /// The rows an append wrote, all in clear.
    pub fn from_rows(rows: &[PersonalRow]) -> Self {
        let mut fields: Vec<_> = rows
            .iter()
            .map(|r| (r.field.to_owned(), Some(r.value.clone())))
            .collect();
        fields.sort();
        Self(fields)
    }

    /// A field's value as read: the value, `[erased]`, or `None` if the event has no such
    /// personal field.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_deref().unwrap_or(ERASED))
    }

    /// The stored payload with its personal fields' values (or `[erased]`) back in place.
    pub fn open_payload<'a>(&self, event_type: &str, payload: &'a Value) -> Cow<'a, Value> {
        let mut fields = payload_fields(event_type).peekable();
        if fields.peek().is_none() {
            return Cow::Borrowed(payload);
        }
        let mut opened = payload.clone();
        for field in fields {
            let forgotten = is_forgotten(payload.get(field));
            if let (Some(slot), Some(value)) = (opened.get_mut(field), self.get(field)) {
                let value = if forgotten { ERASED } else { value };
                *slot = Value::String(value.to_owned());
            }
        }
        Cow::Owned(opened)
    }
}

/// Decodes a stored payload read as JSON text, with its personal values put back: a payload
/// without personal fields is read straight into the event, one with them through a JSON
/// tree that is opened first.
pub fn decode_stored(
    event_type: &str,
    schema_version: i32,
    payload: &str,
    personal: &Personal,
) -> Result<crate::domain::DomainEvent, crate::domain::event::DecodeError> {
    use crate::domain::DomainEvent;
    if payload_fields(event_type).next().is_none() {
        return DomainEvent::decode_json(event_type, schema_version, payload);
    }
    let stored: Value = serde_json::from_str(payload).map_err(|source| {
        crate::domain::event::DecodeError::Payload {
            event_type: event_type.to_owned(),
            version: schema_version,
            source,
        }
    })?;
    let opened = personal.open_payload(event_type, &stored);
    DomainEvent::decode(event_type, schema_version, &opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::leaf::commitment_in;
    use serde_json::json;

    #[test]
    fn sealing_leaves_no_clear_value_and_opening_restores_it() {
        let mut payload = json!({"title": "GDE evaluation", "submittedBy": "Dr A. Example"});
        let mut metadata = json!({"actor": "clerk", "role": "editor"});
        let rows = seal("EvidenceSubmitted", &mut payload, &mut metadata);
        assert_eq!(rows.len(), 2);
        let text = format!("{payload}{metadata}");
        assert!(
            !text.contains("Dr A. Example") && !text.contains("clerk"),
            "{text}"
        );
        for row in &rows {
            let slot = if row.field == ACTOR {
                &metadata[ACTOR]
            } else {
                &payload[row.field]
            };
            assert_eq!(commitment_in(slot), Some(commit(&row.opening, &row.value)));
        }
        assert_eq!(metadata["role"], "editor");

        let personal = Personal::from_rows(&rows);
        let opened = personal.open_payload("EvidenceSubmitted", &payload);
        assert_eq!(opened["submittedBy"], "Dr A. Example");
        assert_eq!(personal.get(ACTOR), Some("clerk"));

        let erased = Personal::from_json(Some(json!({"actor": "clerk", "submittedBy": null})));
        assert_eq!(
            erased.open_payload("EvidenceSubmitted", &payload)["submittedBy"],
            ERASED
        );
        assert_eq!(erased.get("submittedBy"), Some(ERASED));
        assert_eq!(erased.get(ACTOR), Some("clerk"));
        assert_eq!(erased.get("organisation"), None);
    }

    #[test]
    fn an_event_without_personal_payload_fields_seals_only_its_actor() {
        let mut payload = json!({"slug": "epr"});
        let mut metadata = json!({"actor": "seed"});
        let rows = seal("CommitmentRegistered", &mut payload, &mut metadata);
        assert_eq!(rows.len(), 1);
        assert_eq!(payload, json!({"slug": "epr"}));
        let personal = Personal::from_rows(&rows);
        assert!(matches!(
            personal.open_payload("CommitmentRegistered", &payload),
            Cow::Borrowed(_)
        ));
    }
}
