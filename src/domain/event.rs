//! The event catalogue (DESIGN §2): the type names, their payloads, their schema versions and
//! how older payloads are upcast when read.
//!
//! Event type names are a contract: never rename or remove one. A payload that changes shape
//! gets a new schema version and an upcaster from every older one.

use super::commitment::CommitmentEvent;
use super::evidence::EvidenceEvent;
use serde_json::Value;

/// The kind of stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// A commitment: registered, revised, assessed, disputed.
    Commitment,
    /// A piece of evidence: submitted, retracted.
    Evidence,
}

impl StreamType {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Commitment => "commitment",
            StreamType::Evidence => "evidence",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "commitment" => Some(StreamType::Commitment),
            "evidence" => Some(StreamType::Evidence),
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
        }
    }

    /// The payload as stored (camelCase JSON).
    pub fn payload(&self) -> Value {
        let value = match self {
            DomainEvent::Commitment(e) => e.payload(),
            DomainEvent::Evidence(e) => e.payload(),
        };
        value.expect("domain events always serialise")
    }

    /// Reads a stored event, upcasting an older schema version to the current one.
    pub fn decode(event_type: &str, version: i32, payload: &Value) -> Result<Self, DecodeError> {
        let current = current_schema_version(event_type)
            .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
        if version < 1 || version > current {
            return Err(DecodeError::UnknownVersion {
                event_type: event_type.to_owned(),
                version,
            });
        }
        // Only an old payload is copied (to be upcast); a current one is read in place.
        let upcast;
        let payload = if version < current {
            upcast = self::upcast(event_type, version, payload.clone());
            &upcast
        } else {
            payload
        };
        let wrap = |source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        };
        if let Some(e) = CommitmentEvent::decode(event_type, payload) {
            return e.map(DomainEvent::Commitment).map_err(wrap);
        }
        if let Some(e) = EvidenceEvent::decode(event_type, payload) {
            return e.map(DomainEvent::Evidence).map_err(wrap);
        }
        Err(DecodeError::UnknownType(event_type.to_owned()))
    }
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
