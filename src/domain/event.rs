//! The event catalogue (DESIGN §2): the type names, their payloads, their schema versions and
//! how older payloads are upcast when read.
//!
//! Event type names are a contract: never rename or remove one. A payload that changes shape
//! gets a new schema version and an upcaster from every older one.

use super::commitment::CommitmentEvent;
use super::erasure::ErasureEvent;
use super::evidence::EvidenceEvent;
use serde_json::Value;

/// The kind of stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// A commitment: registered, revised, assessed, disputed.
    Commitment,
    /// A piece of evidence: submitted, retracted.
    Evidence,
    /// An erasure of personal data (DESIGN §11).
    Erasure,
}

impl StreamType {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Commitment => "commitment",
            StreamType::Evidence => "evidence",
            StreamType::Erasure => "erasure",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "commitment" => Some(StreamType::Commitment),
            "evidence" => Some(StreamType::Evidence),
            "erasure" => Some(StreamType::Erasure),
            _ => None,
        }
    }
}

/// Any event of the domain.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// An event of a commitment stream.
    Commitment(CommitmentEvent),
    /// An event of an evidence stream.
    Evidence(EvidenceEvent),
    /// An event of an erasure stream.
    Erasure(ErasureEvent),
}

/// A stored payload could not be read as any known event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The event type is not in the catalogue.
    #[error("unknown event type {0}")]
    UnknownType(String),
    /// The schema version is newer than this build knows, or has no upcaster.
    #[error("{event_type} has no schema version {version}")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// The stored schema version.
        version: i32,
    },
    /// The payload does not match its schema.
    #[error("{event_type} v{version} payload: {source}")]
    Payload {
        /// The event type.
        event_type: String,
        /// The stored schema version.
        version: i32,
        /// What serde found wrong.
        source: serde_json::Error,
    },
}

impl DomainEvent {
    /// The event's type name (contract).
    pub fn event_type(&self) -> &'static str {
        match self {
            DomainEvent::Commitment(e) => e.event_type(),
            DomainEvent::Evidence(e) => e.event_type(),
            DomainEvent::Erasure(e) => e.event_type(),
        }
    }

    /// The schema version this build writes for the event's type.
    pub fn schema_version(&self) -> i32 {
        current_schema_version(self.event_type()).unwrap_or(1)
    }

    /// The stream type the event belongs to.
    pub fn stream_type(&self) -> StreamType {
        match self {
            DomainEvent::Commitment(_) => StreamType::Commitment,
            DomainEvent::Evidence(_) => StreamType::Evidence,
            DomainEvent::Erasure(_) => StreamType::Erasure,
        }
    }

    /// The payload as stored (camelCase JSON).
    pub fn payload(&self) -> Value {
        let value = match self {
            DomainEvent::Commitment(e) => e.payload(),
            DomainEvent::Evidence(e) => e.payload(),
            DomainEvent::Erasure(e) => e.payload(),
        };
        value.expect("domain events always serialise")
    }

    /// Reads a stored event, upcasting an older schema version to the current one.
    pub fn decode(event_type: &str, version: i32, payload: &Value) -> Result<Self, DecodeError> {
        // Only an old payload is copied (to be upcast); a current one is read in place.
        if check_version(event_type, version)? {
            let upcast = self::upcast(event_type, version, payload.clone());
            return Self::decode_current(event_type, version, &upcast);
        }
        Self::decode_current(event_type, version, payload)
    }

    /// Reads a stored event from its payload's JSON text: a current payload is read straight
    /// into the event, without building a JSON tree first (replaying the log is mostly this).
    pub fn decode_json(event_type: &str, version: i32, payload: &str) -> Result<Self, DecodeError> {
        let wrap = |source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        };
        if check_version(event_type, version)? {
            let value: Value = serde_json::from_str(payload).map_err(wrap)?;
            return Self::decode(event_type, version, &value);
        }
        let mut de = serde_json::Deserializer::from_str(payload);
        let event = Self::decode_current(event_type, version, &mut de)?;
        de.end().map_err(wrap)?;
        Ok(event)
    }

    /// Reads a payload of the current schema version.
    fn decode_current<'de, D>(
        event_type: &str,
        version: i32,
        payload: D,
    ) -> Result<Self, DecodeError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        let wrap = |source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        };
        let decoded = if is_commitment_event(event_type) {
            CommitmentEvent::decode(event_type, payload).map(|r| r.map(DomainEvent::Commitment))
        } else if event_type == "PersonalDataErased" {
            ErasureEvent::decode(event_type, payload).map(|r| r.map(DomainEvent::Erasure))
        } else {
            EvidenceEvent::decode(event_type, payload).map(|r| r.map(DomainEvent::Evidence))
        };
        match decoded {
            Some(event) => event.map_err(wrap),
            None => Err(DecodeError::UnknownType(event_type.to_owned())),
        }
    }
}

/// Whether an event type belongs to commitment streams.
fn is_commitment_event(event_type: &str) -> bool {
    matches!(
        event_type,
        "CommitmentRegistered" | "CommitmentRevised" | "CommitmentAssessed" | "AssessmentDisputed"
    )
}

/// Checks that `version` is a known schema version of `event_type`; true when it is older
/// than the current one (to be upcast).
fn check_version(event_type: &str, version: i32) -> Result<bool, DecodeError> {
    let current = current_schema_version(event_type)
        .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
    if version < 1 || version > current {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    Ok(version < current)
}

/// The schema version written today for each event type; `None` for an unknown type.
pub fn current_schema_version(event_type: &str) -> Option<i32> {
    Some(match event_type {
        "CommitmentRegistered" => 1,
        "CommitmentRevised" => 1,
        // v2 added `assessorKind` (v1 stored only the assessor's name).
        "CommitmentAssessed" => 2,
        "AssessmentDisputed" => 1,
        "EvidenceSubmitted" => 1,
        "EvidenceRetracted" => 1,
        "PersonalDataErased" => 1,
        _ => return None,
    })
}

/// Brings a stored payload up to the current schema version of its type, one step at a time.
fn upcast(event_type: &str, mut version: i32, mut payload: Value) -> Value {
    while let Some(next) = upcast_step(event_type, version, &mut payload) {
        version = next;
    }
    payload
}

/// One upcasting step; returns the version reached, or `None` when already current.
fn upcast_step(event_type: &str, version: i32, payload: &mut Value) -> Option<i32> {
    match (event_type, version) {
        ("CommitmentAssessed", 1) => {
            // v1 had no assessor kind. Those verdicts were recorded before the distinction was
            // made, so none can be claimed as independent or governmental: OTHER says so.
            if let Value::Object(map) = payload {
                map.entry("assessorKind")
                    .or_insert(Value::String("OTHER".into()));
            }
            Some(2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rating::AssessorKind;
    use serde_json::json;

    #[test]
    fn a_version_one_assessment_is_upcast_with_assessor_kind_other() {
        let stored = json!({
            "assessmentId": "0190d0a0-0000-7000-8000-000000000001",
            "assessor": "HSCC Expert Panel",
            "assessedOn": "2023-02-17",
            "overall": "INADEQUATE",
            "aspects": {},
            "deliveryStatus": "NOT_ON_TRACK",
            "rationale": "Far from on track.",
            "evidenceIds": []
        });
        let event = DomainEvent::decode("CommitmentAssessed", 1, &stored).unwrap();
        let DomainEvent::Commitment(CommitmentEvent::Assessed(a)) = event else {
            panic!("decoded as the wrong event: {event:?}");
        };
        assert_eq!(a.assessor_kind, AssessorKind::Other);
        assert_eq!(a.assessor, "HSCC Expert Panel");
    }

    #[test]
    fn a_version_one_assessment_read_from_text_is_upcast_too() {
        let text = r#"{"assessmentId": "0190d0a0-0000-7000-8000-000000000001",
            "assessor": "HSCC Expert Panel", "assessedOn": "2023-02-17", "overall": "INADEQUATE",
            "aspects": {}, "deliveryStatus": "NOT_ON_TRACK", "rationale": "Far from on track.",
            "evidenceIds": []}"#;
        let tree: Value = serde_json::from_str(text).unwrap();
        let from_text = DomainEvent::decode_json("CommitmentAssessed", 1, text).unwrap();
        assert_eq!(
            from_text,
            DomainEvent::decode("CommitmentAssessed", 1, &tree).unwrap()
        );
        let DomainEvent::Commitment(CommitmentEvent::Assessed(a)) = from_text else {
            panic!("decoded as the wrong event: {from_text:?}");
        };
        assert_eq!(a.assessor_kind, AssessorKind::Other);
    }

    #[test]
    fn text_with_anything_after_the_payload_is_refused() {
        let text = r#"{"reason": "Withdrawn by its authors.", "retractedOn": "2024-01-01"} x"#;
        assert!(DomainEvent::decode_json("EvidenceRetracted", 1, &text[..text.len() - 2]).is_ok());
        assert!(matches!(
            DomainEvent::decode_json("EvidenceRetracted", 1, text),
            Err(DecodeError::Payload { .. })
        ));
        assert!(matches!(
            DomainEvent::decode_json("EvidenceRetracted", 9, "{}"),
            Err(DecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            DomainEvent::decode_json("CommitmentDeleted", 1, "{}"),
            Err(DecodeError::UnknownType(_))
        ));
    }

    #[test]
    fn unknown_types_and_future_versions_are_refused() {
        assert!(matches!(
            DomainEvent::decode("CommitmentDeleted", 1, &json!({})),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            DomainEvent::decode("EvidenceRetracted", 9, &json!({"reason": "x"})),
            Err(DecodeError::UnknownVersion { .. })
        ));
    }
}
