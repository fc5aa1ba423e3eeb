//! Appending events: the single place that writes the events table.
//!
//! An append locks the stream's row in `streams` (so appends to one stream are serial and the
//! chain has one head), checks the expected version, chains each event's hash from the
//! previous one and inserts it. The caller applies projections in the same transaction.
//!
//! The shape of an event as stored, and its decoding, are in `stored`; chaining, sealing and
//! writing a batch of events, in `write`.

mod stored;
mod write;

pub use stored::*;
pub use write::*;

use super::chain::{ChainInput, canonical_bytes, link_leaf};
use super::personal::{self, Personal, PersonalRow};
use super::position::{self, LogPosition};
use super::{StoreError, StoreResult, unique_violation};
use crate::domain::{DomainError, DomainEvent, EvidenceStatus, References, StreamType};
use crate::tlog::tiles::MAX_LEAF_BYTES;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Who asked for a change and how: stored as each event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The actor (a token's name).
    pub actor: String,
    /// The actor's role when the event was written.
    pub role: String,
    /// The request that carried the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's idempotency key, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// A stream, locked for appending.
#[derive(Debug, Clone)]
pub struct StreamHead {
    /// The stream.
    pub stream_id: Uuid,
    /// Its type.
    pub stream_type: StreamType,
    /// The version of its last event (0 for a stream that does not exist yet).
    pub version: i32,
    /// The hash of its last event.
    pub last_hash: Option<Vec<u8>>,
    /// The database clock when the lock was taken: the events' `recorded_at`.
    pub now: DateTime<Utc>,
}

/// The advisory lock every append holds shared and a projection rebuild takes exclusively to
/// swap its tables in: appends pause for the swap, before they take any other lock, so the two
/// can never wait for each other.
///
/// It also marks who may append: an appending transaction enters it (`enter_append_gate`,
/// migration 0008) before it writes anything, and the horizon readers read below passes over
/// every running transaction that does not hold it (ADR 0013).
pub const APPEND_GATE: i64 = 0x0C0A_11FE_5EED_0001;

/// The advisory-lock key of a stream: its UUID folded to 64 bits. A collision only makes two
/// streams' appends wait for each other.
fn lock_key(stream_id: Uuid) -> i64 {
    let v = stream_id.as_u128();
    ((v >> 64) as u64 ^ v as u64) as i64
}

/// Locks an existing stream for appending. `None` if there is no such stream of that type.
///
/// The lock is a transaction-scoped advisory lock, taken before the transaction writes
/// anything. Postgres assigns a transaction id at the first write, so a writer that waited
/// for the lock gets a higher id than the one it waited for: within a stream, committed
/// order (transaction id, position) is always version order.
pub async fn lock_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: StreamType,
) -> StoreResult<Option<StreamHead>> {
    // language=PostgreSQL
    sqlx::query("select enter_append_gate($1), pg_advisory_xact_lock($2)")
        .bind(APPEND_GATE)
        .bind(lock_key(stream_id))
        .execute(&mut *conn)
        .await?;
    // A statement of its own: in READ COMMITTED each statement takes a new snapshot, so this
    // one sees what the writer we waited for committed (a snapshot taken before the wait
    // would not).
    // language=PostgreSQL
    let row = sqlx::query(
        "select s.version, s.last_hash, clock_timestamp() as now
         from (select 1) one left join streams s on s.stream_id = $1 and s.stream_type = $2",
    )
    .bind(stream_id)
    .bind(stream_type.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let version: Option<i32> = row.try_get("version")?;
    let Some(version) = version else {
        return Ok(None);
    };
    Ok(Some(StreamHead {
        stream_id,
        stream_type,
        version,
        last_hash: row.try_get("last_hash")?,
        now: row.try_get("now")?,
    }))
}

/// What a batch of commands decides against, read in the round trip that takes its locks.
#[derive(Debug, Default)]
pub struct Opened {
    /// The heads of the streams asked for that exist with the type asked (the others are
    /// missing).
    pub heads: HashMap<Uuid, StreamHead>,
    /// The database clock after the locks were taken: the events' `recorded_at`.
    pub now: DateTime<Utc>,
    /// Which of the tokens asked for are valid now, as this transaction sees them: no event
    /// is written under a token revoked or expired before the commit, whatever a cache said.
    pub valid_tokens: HashSet<Uuid>,
    /// Which of the referenced commitments and evidence exist.
    pub references: References,
}

/// Begins a transaction on `conn` and opens an append in it, in one round trip (migration
/// 0011): enters the append gate, locks the existing `streams`, and reads their heads, the
/// clock, which of `tokens` are valid and which referenced streams exist, in a snapshot taken
/// after the locks (see `lock_stream`).
///
/// `BEGIN` travels in the same message as the call, so the transaction is sqlx's to know
/// nothing of: the caller ends it with [`commit_append`], or rolls it back, on this
/// connection. Every value in the message is a number or a UUID, written by this function.
///
/// Every batch takes its stream locks in one order (ascending key, after the append gate), so
/// two batches can wait for each other's commit but never for each other in a cycle.
pub async fn begin_append(
    conn: &mut PgConnection,
    streams: &[(Uuid, StreamType)],
    tokens: &[Uuid],
    commitments: &[Uuid],
    evidence: &[Uuid],
) -> StoreResult<Opened> {
    let mut keys: Vec<i64> = streams.iter().map(|(id, _)| lock_key(*id)).collect();
    keys.sort_unstable();
    keys.dedup();
    fn array<T: std::fmt::Display>(values: impl Iterator<Item = T>, of: &str) -> String {
        let values: Vec<String> = values.map(|v| v.to_string()).collect();
        format!("'{{{}}}'::{of}[]", values.join(","))
    }
    // language=PostgreSQL
    let sql = format!(
        "begin; select * from open_append({APPEND_GATE}, {}, {}, {}, {}, {})",
        array(keys.iter(), "int8"),
        array(streams.iter().map(|(id, _)| id), "uuid"),
        array(tokens.iter(), "uuid"),
        array(commitments.iter(), "uuid"),
        array(evidence.iter(), "uuid"),
    );
    let rows = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    let mut now = None;
    let mut found: HashMap<Uuid, (String, i32, Option<Vec<u8>>)> = HashMap::new();
    let mut opened = Opened::default();
    for row in &rows {
        let kind: &str = row.try_get("kind")?;
        let id: Option<Uuid> = row.try_get("id")?;
        match (kind, id) {
            ("clock", _) => now = Some(row.try_get::<DateTime<Utc>, _>("at")?),
            ("head", Some(id)) => {
                found.insert(
                    id,
                    (
                        row.try_get("stream_type")?,
                        row.try_get("version")?,
                        row.try_get("last_hash")?,
                    ),
                );
            }
            ("token", Some(id)) => {
                opened.valid_tokens.insert(id);
            }
            ("commitment", Some(id)) => {
                opened.references.commitments.insert(id);
            }
            ("evidence", Some(id)) => {
                let status = if row.try_get::<Option<bool>, _>("retracted")? == Some(true) {
                    EvidenceStatus::Retracted
                } else {
                    EvidenceStatus::Current
                };
                opened.references.evidence.insert(id, status);
            }
            _ => {
                return Err(StoreError::Corrupt {
                    position: 0,
                    reason: format!("open_append returned an unknown row: {kind}"),
                });
            }
        }
    }
    opened.now = now.ok_or(StoreError::Corrupt {
        position: 0,
        reason: "open_append returned no clock".into(),
    })?;
    for (id, stream_type) in streams {
        if let Some((stored_type, version, last_hash)) = found.get(id)
            && stored_type == stream_type.as_str()
        {
            opened.heads.insert(
                *id,
                StreamHead {
                    stream_id: *id,
                    stream_type: *stream_type,
                    version: *version,
                    last_hash: last_hash.clone(),
                    now: opened.now,
                },
            );
        }
    }
    Ok(opened)
}

/// Commits the transaction [`begin_append`] began and reads the log position after its commit
/// record, in one round trip.
///
/// `Err` means the commit failed (or its fate is unknown: the connection was lost);
/// `Ok(None)` means it committed and only the position could not be read.
pub async fn commit_append(conn: &mut PgConnection) -> Result<Option<LogPosition>, sqlx::Error> {
    use futures_util::TryStreamExt;
    // language=PostgreSQL
    let mut results = sqlx::raw_sql(AssertSqlSafe(format!("commit; {}", position::CURRENT)))
        .fetch_many(&mut *conn);
    // The first result is the commit's: once it is in, whatever follows cannot undo it.
    match results.try_next().await? {
        Some(sqlx::Either::Left(_)) => {}
        _ => {
            return Err(sqlx::Error::Protocol(
                "the commit returned no result".into(),
            ));
        }
    }
    let position = match results.try_next().await {
        Ok(Some(sqlx::Either::Right(row))) => row
            .try_get::<String, _>(0)
            .ok()
            .and_then(|text| LogPosition::parse(&text)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "no log position after a commit");
            None
        }
    };
    // Drain the rest, so the connection is ready for its next statement.
    while let Ok(Some(_)) = results.try_next().await {}
    Ok(position)
}

/// A head for a stream that does not exist yet.
pub async fn new_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: StreamType,
) -> StoreResult<StreamHead> {
    // language=PostgreSQL
    let (_, now): ((), DateTime<Utc>) =
        sqlx::query_as("select enter_append_gate($1), clock_timestamp()")
            .bind(APPEND_GATE)
            .fetch_one(&mut *conn)
            .await?;
    Ok(StreamHead {
        stream_id,
        stream_type,
        version: 0,
        last_hash: None,
        now,
    })
}

/// Reads a whole stream in version order.
pub async fn load_stream(
    conn: &mut PgConnection,
    stream_id: Uuid,
) -> StoreResult<Vec<StoredEvent>> {
    load_stream_after(conn, stream_id, 0).await
}

/// The events of a stream after `version`, in version order.
pub async fn load_stream_after(
    conn: &mut PgConnection,
    stream_id: Uuid,
    version: i32,
) -> StoreResult<Vec<StoredEvent>> {
    // language=PostgreSQL
    let sql = format!(
        "select {EVENT_COLUMNS} from events where stream_id = $1 and version > $2 order by version"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(stream_id)
        .bind(version)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The business time of a business date: midnight UTC at its start.
pub fn business_time(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}
