//! The bytes of a leaf (DESIGN §10) and the commitments that stand in for personal data in
//! them (DESIGN §11); `docs/adr/0010-leaves-and-personal-data.md` works an example through.
//!
//! A leaf is the event's envelope as UTF-8 JSON, canonical per RFC 8785 (JCS): object members
//! sorted by key, no white space, strings with only the escapes JSON requires, integers in
//! decimal. Timestamps are RFC 3339 strings in UTC with exactly six fractional digits
//! (PostgreSQL's precision), so an event read back encodes to the very bytes first written.
//! The same bytes feed each stream's hash chain, so the chain and the tree protect one thing.
//!
//! A personal value never appears in a leaf: its field holds `{"hmacSha256": B}` where `B` is
//! the standard base64 of HMAC-SHA256(opening, UTF-8 value) and the opening is at least 16
//! random bytes kept beside the value, outside the log. Erasing both leaves the commitment
//! standing, so every hash, proof and checkpoint holds as before, while nobody can test a
//! guess at the erased value against it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The member that holds a commitment in place of a personal value.
pub const COMMITMENT_KEY: &str = "hmacSha256";

/// The size of the openings this build draws; shorter stored openings are refused.
pub const OPENING_LEN: usize = 32;

/// The least opening length DESIGN §11 allows.
pub const MIN_OPENING_LEN: usize = 16;

/// Everything about an event that its leaf holds.
#[derive(Debug, Clone, Copy)]
pub struct LeafInput<'a> {
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
    /// Payload, personal fields as commitments.
    pub payload: &'a Value,
    /// Metadata, the actor as a commitment.
    pub metadata: &'a Value,
}

/// The leaf bytes of an event.
pub fn leaf_bytes(input: &LeafInput<'_>) -> Vec<u8> {
    let ts = |t: DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true));
    let envelope = serde_json::json!({
        "id": input.event_id.to_string(),
        "streamId": input.stream_id.to_string(),
        "streamType": input.stream_type,
        "version": input.version,
        "type": input.event_type,
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

/// `value` encoded per RFC 8785.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            // RFC 8785 §3.2.3 sorts by UTF-16 code units; for the ASCII keys of events that is
            // byte order, and a non-ASCII key is sorted by its UTF-16 form all the same.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
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
        Value::Number(n) => write_number(n, out),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

/// RFC 8785 §3.2.2.2: only `"`, `\` and the controls below U+0020 are escaped, with the
/// short forms where JSON has one and `\u00xx` (lower-case hex) otherwise.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// RFC 8785 §3.2.2.3 numbers: ECMAScript's shortest round-trip form. Events hold only
/// integers; a float is written as ECMAScript writes it for the magnitudes where that and
/// Rust's shortest form agree, and as an integer when it has no fraction.
fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else {
        let f = n.as_f64().unwrap_or_default();
        if f.fract() == 0.0 && f.abs() < 1e21 {
            out.extend_from_slice(format!("{f:.0}").as_bytes());
        } else {
            out.extend_from_slice(format!("{f}").as_bytes());
        }
    }
}

/// HMAC-SHA256(key, message), RFC 2104.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The commitment to a personal value under its opening.
pub fn commit(opening: &[u8], value: &str) -> [u8; 32] {
    hmac_sha256(opening, value.as_bytes())
}

/// The JSON that stands in a leaf for a personal value.
pub fn commitment_json(commitment: &[u8; 32]) -> Value {
    serde_json::json!({ COMMITMENT_KEY: STANDARD.encode(commitment) })
}

/// The commitment a field holds, if it holds one.
pub fn commitment_in(value: &Value) -> Option<[u8; 32]> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    let b64 = object.get(COMMITMENT_KEY)?.as_str()?;
    STANDARD.decode(b64).ok()?.try_into().ok()
}

/// A fresh random opening.
pub fn new_opening() -> [u8; OPENING_LEN] {
    rand::random()
}

/// An envelope for tests, around the payload and metadata given.
#[cfg(test)]
pub(crate) fn example_input<'a>(payload: &'a Value, metadata: &'a Value) -> LeafInput<'a> {
    LeafInput {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use example_input as input;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn canonical_json_matches_rfc_8785() {
        // RFC 8785 §3.2.2.2's string example, and key order by UTF-16 code units (§3.2.3:
        // U+1D306 sorts before U+FB33 in UTF-16 though after it in UTF-8).
        let value = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{80}": "Control",
            "\u{f6}": "Latin Small Letter O With Diaeresis",
            "s": "\u{20ac}$\u{f}\nA'B\"\\\\\"/",
        });
        let text = String::from_utf8(canonical_json(&value)).unwrap();
        assert_eq!(
            text,
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"s\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\",\
             \"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\
             \"€\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\
             \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            canonical_json(&json!([1, -2, true, null, 3.0])),
            b"[1,-2,true,null,3]"
        );
    }

    #[test]
    fn a_leaf_is_the_sorted_envelope() {
        let payload = json!({"slug": "epr", "a": [1, 2]});
        let metadata = json!({"role": "admin", "actor": commitment_json(&[7; 32])});
        let text = String::from_utf8(leaf_bytes(&input(&payload, &metadata))).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"id":"00000000-0000-0000-0000-000000000000","#,
                r#""metadata":{"actor":{"hmacSha256":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="},"role":"admin"},"#,
                r#""occurredAt":"2022-06-29T00:00:00.000000Z","payload":{"a":[1,2],"slug":"epr"},"#,
                r#""recordedAt":"2025-11-24T16:00:00.123456Z","schemaVersion":1,"#,
                r#""streamId":"ffffffff-ffff-ffff-ffff-ffffffffffff","streamType":"commitment","#,
                r#""type":"CommitmentRegistered","version":1}"#
            )
        );
    }

    #[test]
    fn a_commitment_binds_its_value_and_opening() {
        let opening = [1u8; 16];
        let c = commit(&opening, "Dr A. Example");
        assert_eq!(c, hmac_sha256(&opening, b"Dr A. Example"));
        assert_ne!(c, commit(&opening, "Dr A. Exampl"));
        assert_ne!(c, commit(&[2u8; 16], "Dr A. Example"));
        assert_eq!(commitment_in(&commitment_json(&c)), Some(c));
        assert_eq!(commitment_in(&json!("Dr A. Example")), None);
        assert_eq!(commitment_in(&json!({"hmacSha256": "AAAA"})), None);
        assert_ne!(new_opening(), new_opening());
    }

    /// The worked example of `docs/adr/0010-leaves-and-personal-data.md`, computed there
    /// with Python's hmac, hashlib and json modules.
    #[test]
    fn the_worked_example_of_the_adr_reproduces() {
        let opening: Vec<u8> = (0u8..16).collect();
        let submitter = commit(&opening, "Dr A. Example");
        assert_eq!(
            hex::encode(submitter),
            "403ab30ab1159b0b4110f265998cbf0bb4b80f769d695271f442bda2b5f81fa1"
        );
        let actor = commit(&[0xff; 16], "clerk");
        let payload = json!({
            "commitmentIds": ["018f0000-0000-7000-8000-000000000003"],
            "kind": "EVALUATION", "organisation": "University of Edinburgh", "sourceUrl": null,
            "submittedBy": commitment_json(&submitter), "submittedOn": "2023-02-17",
            "summary": "\u{c9}valuation: \"GDE\"", "title": "GDE evaluation",
        });
        let metadata = json!({"actor": commitment_json(&actor), "role": "editor"});
        let leaf = leaf_bytes(&LeafInput {
            event_id: "018f0000-0000-7000-8000-000000000001".parse().unwrap(),
            stream_id: "018f0000-0000-7000-8000-000000000002".parse().unwrap(),
            stream_type: "evidence",
            version: 1,
            event_type: "EvidenceSubmitted",
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_676_592_000, 0).unwrap(),
            recorded_at: DateTime::from_timestamp(1_796_117_400, 123_456_000).unwrap(),
            payload: &payload,
            metadata: &metadata,
        });
        assert_eq!(
            String::from_utf8(leaf.clone()).unwrap(),
            concat!(
                r#"{"id":"018f0000-0000-7000-8000-000000000001","metadata":{"actor":{"hmacSha256":"#,
                r#""tzU5hZ2iRX0oBpWpTaEGswVu3RipC2BWGJqEYNfm//Y="},"role":"editor"},"#,
                r#""occurredAt":"2023-02-17T00:00:00.000000Z","payload":{"commitmentIds":"#,
                r#"["018f0000-0000-7000-8000-000000000003"],"kind":"EVALUATION","#,
                r#""organisation":"University of Edinburgh","sourceUrl":null,"submittedBy":"#,
                r#"{"hmacSha256":"QDqzCrEVmwtBEPJlmYy/C7S4D3adaVJx9EK9orX4H6E="},"#,
                r#""submittedOn":"2023-02-17","summary":"Évaluation: \"GDE\"","title":"GDE evaluation"},"#,
                r#""recordedAt":"2026-12-01T09:30:00.123456Z","schemaVersion":1,"#,
                r#""streamId":"018f0000-0000-7000-8000-000000000002","streamType":"evidence","#,
                r#""type":"EvidenceSubmitted","version":1}"#
            )
        );
        assert_eq!(
            hex::encode(crate::tlog::tree::leaf_hash(&leaf).0),
            "bcbf4991c392186bb8380290a22a591844908b4b16e3a11cf21fd9eb75faeae5"
        );
    }
}
