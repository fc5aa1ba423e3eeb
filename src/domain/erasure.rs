//! Erasure streams (DESIGN §11): the record that a person's values were erased on request.
//!
//! The event names the salted commitments that stood for the erased values in the hashed
//! record, and the reason, never the values: after it, nothing stored can tell whose they were.

use super::DomainError;
use super::text::Line;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `PersonalDataErased`: values of the personal fields were erased, with their openings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalDataErased {
    /// Why they were erased (the request's reference, its legal basis).
    pub reason: String,
    /// The erased values' commitments as the events hold them (base64 HMAC-SHA256), sorted.
    pub commitments: Vec<String>,
    /// How many token names were erased besides (no event holds a token name).
    pub token_names: u32,
    /// When (the event's business time).
    pub erased_on: NaiveDate,
}

/// The events of an erasure stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureEvent {
    /// `PersonalDataErased`.
    Erased(PersonalDataErased),
}

impl ErasureEvent {
    /// The contract name of the event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            ErasureEvent::Erased(_) => "PersonalDataErased",
        }
    }

    /// When it happened in the world.
    pub fn occurred_on(&self) -> NaiveDate {
        match self {
            ErasureEvent::Erased(e) => e.erased_on,
        }
    }

    pub(super) fn payload(&self) -> serde_json::Result<Value> {
        match self {
            ErasureEvent::Erased(e) => serde_json::to_value(e),
        }
    }

    pub(super) fn decode<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Option<Result<Self, D::Error>> {
        Some(match event_type {
            "PersonalDataErased" => Deserialize::deserialize(payload).map(Self::Erased),
            _ => return None,
        })
    }
}

/// Erase every stored value of a name, as asked.
#[derive(Debug, Clone)]
pub struct ErasePersonalData {
    /// The value to erase wherever a personal field holds it.
    pub name: Line,
    /// Why.
    pub reason: Line,
}

impl ErasePersonalData {
    /// Checks the input.
    pub fn parse(name: &str, reason: &str) -> Result<Self, DomainError> {
        Ok(Self {
            name: Line::parse("name", name)?,
            reason: Line::parse("reason", reason)?,
        })
    }
}
