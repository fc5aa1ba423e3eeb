//! The per-stream hash chain: `hash = SHA-256(previous hash ‖ leaf bytes)`.
//!
//! The bytes are the event's transparency-log leaf ([`crate::tlog::leaf`]): RFC 8785 JSON of
//! the envelope, payload and metadata as stored, personal values as salted commitments. The
//! chain and the Merkle tree therefore protect the same bytes, and erasing a personal value
//! (its opening and clear text live outside the events) breaks neither.

use sha2::{Digest, Sha256};

pub use crate::tlog::leaf::LeafInput as ChainInput;
pub use crate::tlog::leaf::leaf_bytes as canonical_bytes;

/// The hash of an event that follows `previous` (None for a stream's first event).
pub fn link(previous: Option<&[u8]>, input: &ChainInput<'_>) -> [u8; 32] {
    link_leaf(previous, &canonical_bytes(input))
}

/// The hash of an event whose leaf bytes are `leaf`, following `previous`.
pub fn link_leaf(previous: Option<&[u8]>, leaf: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    if let Some(prev) = previous {
        hasher.update(prev);
    }
    hasher.update(leaf);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::leaf::example_input as input;
    use serde_json::{Value, json};

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
