//! Log positions: where a database stands in PostgreSQL's write-ahead log (an LSN). Every
//! commit moves the primary's position forward, and a streaming replica's replay position
//! follows it, so one number says both "this write is done" (a mutation's
//! `extensions.logPosition`) and "this answer reflects everything up to here" (the `ETag` of
//! a cached read).

use super::StoreResult;
use sqlx::PgExecutor;
use std::fmt;

/// A position in the write-ahead log, compared as the 64-bit number it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition(pub u64);

impl LogPosition {
    /// Parses PostgreSQL's `pg_lsn` text: two hexadecimal numbers, `X/Y`.
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.trim().split_once('/')?;
        let valid =
            |h: &str| !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid(high) || !valid(low) {
            return None;
        }
        let high = u64::from_str_radix(high, 16).ok()?;
        let low = u64::from_str_radix(low, 16).ok()?;
        Some(Self((high << 32) | low))
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The statement that reads where the database stands, as text.
// language=PostgreSQL
pub(crate) const CURRENT: &str =
    "select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
                                          else pg_current_wal_lsn() end)::text";

/// Where the database behind `db` (a pool, or a connection) stands: the primary's current
/// write position, or a replica's replay position. One statement that reads no table.
///
/// Asked on the connection that has just committed, the answer is at or after that commit:
/// a synchronous commit returns once its record is written and flushed.
pub async fn current<'e>(db: impl PgExecutor<'e>) -> StoreResult<LogPosition> {
    let text: String = sqlx::query_scalar(CURRENT).fetch_one(db).await?;
    LogPosition::parse(&text).ok_or_else(|| super::StoreError::Corrupt {
        position: 0,
        reason: format!("the server gave the log position {text:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_order_as_numbers() {
        for text in ["0/0", "0/16B3748", "1/0", "FFFFFFFF/FFFFFFFF", "A/9"] {
            assert_eq!(LogPosition::parse(text).unwrap().to_string(), text);
        }
        assert!(LogPosition::parse("0/FFFFFFFF").unwrap() < LogPosition::parse("1/0").unwrap());
        assert!(LogPosition::parse("0/A").unwrap() > LogPosition::parse("0/9").unwrap());
        for bad in ["", "0", "/1", "1/", "0/G", "123456789/0", "1/2/3", "-1/0"] {
            assert_eq!(LogPosition::parse(bad), None, "{bad}");
        }
    }
}
