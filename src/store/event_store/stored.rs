//! An event as stored: its envelope, its personal values, and its decoding from a row.

use super::super::chain::ChainInput;
use super::super::cursor::EventCursor;
use super::super::personal::{self, Personal};
use super::super::{StoreError, StoreResult};
use crate::domain::DomainEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Row, postgres::PgRow};
use uuid::Uuid;

/// An event as stored, with its full envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global position.
    pub position: i64,
    /// The appending transaction's id.
    pub transaction_id: i64,
    /// Event id.
    pub event_id: Uuid,
    /// Stream id.
    pub stream_id: Uuid,
    /// Stream type (`commitment` or `evidence`).
    pub stream_type: String,
    /// Version in the stream.
    pub version: i32,
    /// Event type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i32,
    /// Payload as stored: personal fields hold commitments (see [`StoredEvent::opened_payload`]).
    pub payload: Value,
    /// Metadata as stored: the actor is a commitment (see [`StoredEvent::actor`]).
    pub metadata: Value,
    /// The personal values behind the commitments, or `None` where erased.
    pub personal: Personal,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Previous hash in the stream.
    pub previous_hash: Option<Vec<u8>>,
    /// This event's hash.
    pub hash: Vec<u8>,
}

/// What folding an event into projections needs besides its payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope<'a> {
    /// Global position.
    pub position: i64,
    /// The appending transaction's id.
    pub transaction_id: i64,
    /// Stream id.
    pub stream_id: Uuid,
    /// Version in the stream.
    pub version: i32,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: &'a str,
}

impl Envelope<'_> {
    /// Where the event sits in committed order.
    pub fn cursor(&self) -> EventCursor {
        EventCursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

impl StoredEvent {
    /// The envelope folding needs.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope {
            position: self.position,
            transaction_id: self.transaction_id,
            stream_id: self.stream_id,
            version: self.version,
            recorded_at: self.recorded_at,
            actor: self.actor(),
        }
    }

    /// Where the event sits in committed order.
    pub fn cursor(&self) -> EventCursor {
        EventCursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// Who wrote the event (`[erased]` once erased).
    pub fn actor(&self) -> &str {
        if personal::is_forgotten(self.metadata.get(personal::ACTOR)) {
            return personal::ERASED;
        }
        self.personal.get(personal::ACTOR).unwrap_or_default()
    }

    /// The personal fields whose values were erased (`actor`, `submittedBy`), in name order.
    pub fn erased_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .personal
            .0
            .iter()
            .filter(|(field, value)| {
                let slot = if field == personal::ACTOR {
                    self.metadata.get(personal::ACTOR)
                } else {
                    self.payload.get(field)
                };
                value.is_none() || personal::is_forgotten(slot)
            })
            .map(|(field, _)| field.clone())
            .collect();
        fields.sort_unstable();
        fields
    }

    /// The payload with its personal values (or `[erased]`) in place of their commitments.
    pub fn opened_payload(&self) -> std::borrow::Cow<'_, Value> {
        self.personal.open_payload(&self.event_type, &self.payload)
    }

    /// Decodes the payload into a domain event, upcasting older schema versions.
    pub fn decode(&self) -> StoreResult<DomainEvent> {
        DomainEvent::decode(
            &self.event_type,
            self.schema_version,
            &self.opened_payload(),
        )
        .map_err(|e| StoreError::Corrupt {
            position: self.position,
            reason: e.to_string(),
        })
    }

    /// The input to the hash chain, as stored.
    pub fn chain_input(&self) -> ChainInput<'_> {
        ChainInput {
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_type: &self.stream_type,
            version: self.version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }

    /// Reads an event from a row holding every envelope column.
    pub fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get("position")?,
            transaction_id: row.try_get("transaction_id")?,
            event_id: row.try_get("event_id")?,
            stream_id: row.try_get("stream_id")?,
            stream_type: row.try_get("stream_type")?,
            version: row.try_get("version")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            personal: Personal::from_json(row.try_get("personal")?),
            occurred_at: row.try_get("occurred_at")?,
            recorded_at: row.try_get("recorded_at")?,
            previous_hash: row.try_get("previous_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

/// The columns of [`StoredEvent`], for `select`s `from events` (not aliased) elsewhere in the
/// store; the last gathers the event's personal values (null where erased) into one object.
pub(crate) const EVENT_COLUMNS: &str = "position, transaction_id, event_id, stream_id, stream_type, \
     version, event_type, schema_version, payload, metadata, occurred_at, recorded_at, \
     previous_hash, hash, (select jsonb_object_agg(p.field, p.value) \
     from personal_data p where p.event_id = events.event_id) as personal";
