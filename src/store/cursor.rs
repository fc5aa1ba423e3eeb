//! Cursors: opaque strings that name a place in the log or in a list.
//!
//! An event cursor is the pair (transaction id, position): the order in which events became
//! visible, which is what a reader must follow to never skip one (DESIGN §4). Clients must not
//! look inside; the encoding is versioned so it can change.

use std::fmt;

/// A place in the event log, in committed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventCursor {
    /// The appending transaction's id.
    pub transaction_id: i64,
    /// The event's global position.
    pub position: i64,
}

/// A cursor string that is not one this server issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct BadCursor;

const EVENT_PREFIX: &str = "e1.";
const LIST_PREFIX: &str = "l1.";

impl EventCursor {
    /// The start of the log: every event is after it.
    pub const START: EventCursor = EventCursor {
        transaction_id: 0,
        position: 0,
    };

    /// Parses a cursor issued by [`EventCursor::encode`].
    pub fn decode(s: &str) -> Result<Self, BadCursor> {
        let hex = s.strip_prefix(EVENT_PREFIX).ok_or(BadCursor)?;
        let (a, b) = decode_pair(hex)?;
        Ok(EventCursor {
            transaction_id: a,
            position: b,
        })
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        format!(
            "{EVENT_PREFIX}{}",
            encode_pair(self.transaction_id, self.position)
        )
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A place in a list ordered by a single position (e.g. commitments in registration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor(pub i64);

impl ListCursor {
    /// Parses a cursor issued by [`ListCursor::encode`].
    pub fn decode(s: &str) -> Result<Self, BadCursor> {
        let hex = s.strip_prefix(LIST_PREFIX).ok_or(BadCursor)?;
        let (a, b) = decode_pair(hex)?;
        // The second half repeats the first bit-flipped: a cheap check against hand-made cursors.
        if b != !a {
            return Err(BadCursor);
        }
        Ok(ListCursor(a))
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        format!("{LIST_PREFIX}{}", encode_pair(self.0, !self.0))
    }
}

fn encode_pair(a: i64, b: i64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    hex::encode(bytes)
}

fn decode_pair(s: &str) -> Result<(i64, i64), BadCursor> {
    if s.len() != 32 {
        return Err(BadCursor);
    }
    let bytes = hex::decode(s).map_err(|_| BadCursor)?;
    let a = i64::from_be_bytes(bytes[..8].try_into().map_err(|_| BadCursor)?);
    let b = i64::from_be_bytes(bytes[8..].try_into().map_err(|_| BadCursor)?);
    if a < 0 {
        return Err(BadCursor);
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursors_round_trip_and_order_by_transaction_then_position() {
        let a = EventCursor {
            transaction_id: 900,
            position: 12,
        };
        let b = EventCursor {
            transaction_id: 901,
            position: 3,
        };
        assert_eq!(EventCursor::decode(&a.encode()), Ok(a));
        assert!(
            a < b,
            "a later transaction comes later even with a lower position"
        );
    }

    #[test]
    fn foreign_strings_are_not_cursors() {
        for bad in ["", "e1.", "e1.zz", "l1.00", "abc", &ListCursor(5).encode()] {
            assert_eq!(EventCursor::decode(bad), Err(BadCursor), "{bad:?}");
        }
        assert_eq!(
            ListCursor::decode(&ListCursor(5).encode()),
            Ok(ListCursor(5))
        );
        assert_eq!(
            ListCursor::decode(&EventCursor::START.encode()),
            Err(BadCursor)
        );
    }
}
