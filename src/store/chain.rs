//! The per-stream hash chain: `hash = SHA-256(previous hash ‖ canonical encoding)`.
//!
//! The canonical encoding is JSON with object keys sorted at every depth, no insignificant
//! white space, and timestamps as RFC 3339 in UTC with microseconds (Postgres's precision), so
//! that an event read back from the database encodes to the very bytes that were hashed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Everything about an event that the chain protects.
#[derive(Debug, Clone, Copy)]
pub struct ChainInput<'a> {
    /// Event id.
    pub event_id: Uuid,
    /// Stream id.
    pub stream_id: Uuid,
    /// Stream type.
    pub stream_type: &'a str,
    /// Version in the stream.
    pub version: i32,
    /// Event type.
    pub event_type: &'a str,
    /// Payload schema version.
    pub schema_version: i32,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Transaction time.
    pub recorded_at: DateTime<Utc>,
    /// Payload.
    pub payload: &'a Value,
    /// Metadata.
    pub metadata: &'a Value,
}

/// The canonical bytes of an event.
pub fn canonical_bytes(input: &ChainInput<'_>) -> Vec<u8> {
    let ts = |t: DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true));
    let envelope = serde_json::json!({
        "eventId": input.event_id.to_string(),
        "streamId": input.stream_id.to_string(),
        "streamType": input.stream_type,
        "version": input.version,
        "eventType": input.event_type,
        "schemaVersion": input.schema_version,
        "occurredAt": ts(input.occurred_at),
        "recordedAt": ts(input.recorded_at),
        "payload": input.payload,
        "metadata": input.metadata,
    });
    let mut out = Vec::with_capacity(512);
    write_canonical(&envelope, &mut out);
    out
}

/// The hash of an event that follows `previous` (None for a stream's first event).
pub fn link(previous: Option<&[u8]>, input: &ChainInput<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    if let Some(prev) = previous {
        hasher.update(prev);
    }
    hasher.update(canonical_bytes(input));
    hasher.finalize().into()
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(Value::String(s.to_owned()).to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input<'a>(payload: &'a Value, metadata: &'a Value) -> ChainInput<'a> {
        ChainInput {
            event_id: Uuid::nil(),
            stream_id: Uuid::max(),
            stream_type: "commitment",
            version: 1,
            event_type: "CommitmentRegistered",
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_656_460_800, 0).unwrap(),
            recorded_at: DateTime::from_timestamp(1_764_000_000, 123_456_000).unwrap(),
            payload,
            metadata,
        }
    }

    #[test]
    fn key_order_does_not_change_the_encoding() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"é"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"é","y":[1,2]},"b":1}"#).unwrap();
        let m = json!({});
        assert_eq!(
            canonical_bytes(&input(&a, &m)),
            canonical_bytes(&input(&b, &m))
        );
        let text = String::from_utf8(canonical_bytes(&input(&a, &m))).unwrap();
        assert!(
            text.contains(r#""payload":{"a":{"x":"é","y":[1,2]},"b":1}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""recordedAt":"2025-11-24T16:00:00.123456Z""#),
            "{text}"
        );
    }

    #[test]
    fn any_change_or_a_different_predecessor_changes_the_hash() {
        let p = json!({"slug": "epr-all-trusts"});
        let q = json!({"slug": "epr-all-trust"});
        let m = json!({"actor": "admin"});
        let h = link(None, &input(&p, &m));
        assert_ne!(h, link(None, &input(&q, &m)));
        assert_ne!(h, link(Some(&[0u8; 32]), &input(&p, &m)));
        let mut later = input(&p, &m);
        later.version = 2;
        assert_ne!(h, link(None, &later));
        assert_eq!(h, link(None, &input(&p, &m)), "hashing is deterministic");
    }
}
